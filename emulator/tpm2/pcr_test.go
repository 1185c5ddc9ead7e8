package tpm2

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

func TestPCRExtendRead(t *testing.T) {
	_, tr := newStarted(t)
	d := sha256.Sum256([]byte("measurement"))
	_, err := (gt.PCRExtend{
		PCRHandle: gt.AuthHandle{Handle: 7, Auth: gt.PasswordAuth(nil)},
		Digests:   gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: d[:]}}},
	}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := (gt.PCRRead{PCRSelectionIn: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{
		{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(7)}}}}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append(make([]byte, 32), d[:]...))
	if len(r.PCRValues.Digests) != 1 || !bytes.Equal(r.PCRValues.Digests[0].Buffer, want[:]) {
		t.Fatalf("PCR7 = %x, want %x", r.PCRValues.Digests, want)
	}
	if r.PCRUpdateCounter != 1 {
		t.Fatalf("update counter %d, want 1", r.PCRUpdateCounter)
	}
}

// hwinitpcr's contract: SHA-1 bank holds the copied value, SHA-256 bank the
// value extended into the reset value, as a client reads them.
func TestInitPCR(t *testing.T) {
	e, tr := newStarted(t)
	hw := sha1.Sum([]byte("hardware PCR 4"))
	if err := e.InitPCR(4, hw); err != nil {
		t.Fatal(err)
	}
	rsp, err := gt.PCRRead{PCRSelectionIn: pcrSel(gt.TPMAlgSHA1, 4)}.Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if got := rsp.PCRValues.Digests[0].Buffer; !bytes.Equal(got, hw[:]) {
		t.Errorf("SHA-1 PCR 4 = %x, want %x", got, hw)
	}
	want := sha256.Sum256(append(make([]byte, 32), hw[:]...))
	if got := readPCR(t, tr, 4); !bytes.Equal(got, want[:]) {
		t.Errorf("SHA-256 PCR 4 = %x, want %x", got, want)
	}
	if err := e.InitPCR(24, hw); err == nil {
		t.Error("InitPCR(24) succeeded")
	}
	fresh, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.InitPCR(0, hw); err == nil {
		t.Error("InitPCR before Startup succeeded")
	}
}

// Every bank this TPM implements extends as H(old || digest): with all
// banks allocated (as PCR_Allocate leaves them after a restart), PCR 16
// is extended twice in each and read back against the hash computed here.
func TestPCRExtendEveryBank(t *testing.T) {
	tp, tr := newStarted(t)
	tp.ps.PCRBanks = nil
	for _, alg := range pcrAlgOrder {
		tp.ps.PCRBanks = append(tp.ps.PCRBanks, uint16(alg))
	}
	tp.Reset()
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatalf("Startup: %v", err)
	}
	want := map[gt.TPMAlgID][]byte{}
	for round := 0; round < 2; round++ {
		var ds []gt.TPMTHA
		for _, alg := range pcrAlgOrder {
			h := pcrAlgs[alg]
			d := bytes.Repeat([]byte{byte(alg), byte(round)}, h.Size()/2)
			ds = append(ds, gt.TPMTHA{HashAlg: gt.TPMIAlgHash(alg), Digest: d})
			old := want[alg]
			if old == nil {
				old = make([]byte, h.Size())
			}
			hh := h.New()
			hh.Write(old)
			hh.Write(d)
			want[alg] = hh.Sum(nil)
		}
		if _, err := (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 16, Auth: gt.PasswordAuth(nil)},
			Digests: gt.TPMLDigestValues{Digests: ds}}).Execute(tr); err != nil {
			t.Fatalf("PCR_Extend: %v", err)
		}
	}
	for _, alg := range pcrAlgOrder {
		r, err := (gt.PCRRead{PCRSelectionIn: pcrSel(gt.TPMIAlgHash(alg), 16)}).Execute(tr)
		if err != nil {
			t.Fatalf("PCR_Read(0x%x): %v", alg, err)
		}
		if len(r.PCRValues.Digests) != 1 || !bytes.Equal(r.PCRValues.Digests[0].Buffer, want[alg]) {
			t.Errorf("bank 0x%x: PCR 16 = %x, want %x", alg, r.PCRValues.Digests, want[alg])
		}
	}
}
