package tpm2

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

func pcrSel(alg gt.TPMIAlgHash, pcrs ...uint) gt.TPMLPCRSelection {
	return gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{{Hash: alg, PCRSelect: gt.PCClientCompatible.PCRs(pcrs...)}}}
}

func readPCR(t *testing.T, tr transport.TPM, i uint) []byte {
	t.Helper()
	r, err := (gt.PCRRead{PCRSelectionIn: pcrSel(gt.TPMAlgSHA256, i)}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	return r.PCRValues.Digests[0].Buffer
}

func TestStateRoundTripAndCorruption(t *testing.T) {
	tp, tr := newStarted(t)
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(gt.TPMSNVPublic{
		NVIndex: 0x01500001, NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{OwnerRead: true, OwnerWrite: true, NT: gt.TPMNTOrdinary}, DataSize: 4,
	})}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.NVWrite{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: 0x01500001, Name: nvName(t, tr, 0x01500001)},
		Data: gt.TPM2BMaxNVBuffer{Buffer: []byte("data")}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	_, tr2 := restarted(t, blob, gt.TPMSUClear)
	r, err := (gt.NVRead{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: 0x01500001, Name: nvName(t, tr2, 0x01500001)}, Size: 4}).Execute(tr2)
	if err != nil || string(r.Data.Buffer) != "data" {
		t.Fatalf("NV after reload: %v %q", err, r.Data.Buffer)
	}
	// Every single-byte corruption and every truncation is refused.
	for i := 0; i < len(blob); i += 1 + len(blob)/200 {
		bad := append([]byte{}, blob...)
		bad[i] ^= 0x40
		if _, err := New(Config{State: bad}); !errors.Is(err, ErrBadState) {
			t.Fatalf("corruption at %d accepted: %v", i, err)
		}
	}
	for _, n := range []int{0, 1, 15, 16, len(blob) / 2, len(blob) - 1} {
		if _, err := New(Config{State: blob[:n]}); !errors.Is(err, ErrBadState) {
			t.Fatalf("truncation to %d accepted: %v", n, err)
		}
	}
	if _, err := New(Config{State: append(append([]byte{}, blob...), 0)}); !errors.Is(err, ErrBadState) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
}

func nvName(t *testing.T, tr transport.TPM, h gt.TPMHandle) gt.TPM2BName {
	t.Helper()
	r, err := (gt.NVReadPublic{NVIndex: h}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	return r.NVName
}

func TestShutdownStateResume(t *testing.T) {
	tp, tr := newStarted(t)
	d := sha256.Sum256([]byte("x"))
	if _, err := (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 5, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: d[:]}}}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	before := readPCR(t, tr, 5)
	if _, err := (gt.Shutdown{ShutdownType: gt.TPMSUState}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	// Resume in a new instance from the blob: PCRs survive.
	_, tr2 := restarted(t, blob, gt.TPMSUState)
	if got := readPCR(t, tr2, 5); !bytes.Equal(got, before) {
		t.Fatalf("PCR5 after resume %x, want %x", got, before)
	}
	// Without Shutdown(STATE), Startup(STATE) is refused (TPM_RC_VALUE+P1).
	tp3, _ := New(Config{})
	_, err = (gt.Startup{StartupType: gt.TPMSUState}).Execute(engineTransport{tp3})
	wantRC(t, err, rcValue|0x40|0x100)
	// Startup(CLEAR) after Shutdown(STATE) resets PCRs.
	tp.Reset()
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	if got := readPCR(t, tr, 5); !bytes.Equal(got, make([]byte, 32)) {
		t.Fatalf("PCR5 after Startup(CLEAR) = %x", got)
	}
}

// RestorePersistent undoes a persistent change and leaves PCRs alone.
func TestRestorePersistent(t *testing.T) {
	tp, tr := newStarted(t)
	before, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 16, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: make([]byte, 32)}}}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	pcr := readPCR(t, tr, 16)
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(gt.TPMSNVPublic{
		NVIndex: 0x01500001, NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{OwnerRead: true, OwnerWrite: true, NT: gt.TPMNTOrdinary}, DataSize: 4,
	})}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	// The define's change flag is still set; restoring clears it.
	if err := tp.RestorePersistent(before); err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.NVReadPublic{NVIndex: gt.TPMHandle(0x01500001)}).Execute(tr); err == nil {
		t.Fatal("the NV index survived RestorePersistent")
	}
	if got := readPCR(t, tr, 16); !bytes.Equal(got, pcr) {
		t.Fatalf("PCR 16 changed by RestorePersistent: %x, was %x", got, pcr)
	}
	if tp.NVChanged() {
		t.Fatal("RestorePersistent left the change flag set")
	}
	if err := tp.RestorePersistent(before[:10]); !errors.Is(err, ErrBadState) {
		t.Fatalf("RestorePersistent of a truncated blob = %v", err)
	}
}
