package tpm2

import (
	"bytes"
	"errors"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// The platform's EK is the one a guest's TPM2_CreatePrimary with the
// default templates makes, before and after the TPM is started.
func TestEndorsementPublicMatchesCreatePrimary(t *testing.T) {
	tp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var before [2]*gt.TPMTPublic
	for i, tmpl := range []gt.TPMTPublic{gt.RSAEKTemplate, gt.ECCEKTemplate} {
		if before[i], err = tp.EndorsementPublic(tmpl); err != nil {
			t.Fatal(err)
		}
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	for i, tmpl := range []gt.TPMTPublic{gt.RSAEKTemplate, gt.ECCEKTemplate} {
		rsp := createPrimary(t, tr, gt.TPMRHEndorsement, tmpl)
		got, err := rsp.OutPublic.Contents()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gt.Marshal(got), gt.Marshal(before[i])) {
			t.Errorf("template %d: EndorsementPublic differs from TPM2_CreatePrimary's", i)
		}
	}
	if _, err := tp.EndorsementPublic(gt.TPMTPublic{Type: gt.TPMAlgRSA, NameAlg: 0x99}); err == nil {
		t.Error("a template with an unknown nameAlg was accepted")
	}
}

func certIndex(h uint32) gt.TPMSNVPublic {
	return gt.TPMSNVPublic{
		NVIndex: gt.TPMHandle(h), NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{PPWrite: true, WriteDefine: true, PPRead: true, OwnerRead: true, AuthRead: true,
			NoDA: true, PlatformCreate: true, NT: gt.TPMNTOrdinary},
	}
}

// A provisioned index reads back through TPM2_NV_Read with its own empty
// authorization, is marked written, is saved with the state, and is
// replaced by a second provisioning.
func TestProvisionNV(t *testing.T) {
	tp, _ := newStarted(t)
	tp.NVChanged()
	data := bytes.Repeat([]byte{0x30, 0x82}, 700)
	if err := tp.ProvisionNV(certIndex(0x01C00002), data); err != nil {
		t.Fatal(err)
	}
	if !tp.NVChanged() {
		t.Error("provisioning did not report a durable change")
	}
	read := func() []byte {
		pub, err := (gt.NVReadPublic{NVIndex: gt.TPMHandle(0x01C00002)}).Execute(engineTransport{tp})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := pub.NVPublic.Contents()
		if !p.Attributes.Written || int(p.DataSize) != len(data) {
			t.Fatalf("attributes %+v size %d", p.Attributes, p.DataSize)
		}
		var out []byte
		for off := 0; off < int(p.DataSize); off += 1024 {
			n := min(1024, int(p.DataSize)-off)
			r, err := (gt.NVRead{
				AuthHandle: gt.AuthHandle{Handle: 0x01C00002, Name: pub.NVName, Auth: gt.PasswordAuth(nil)},
				NVIndex:    gt.NamedHandle{Handle: 0x01C00002, Name: pub.NVName},
				Size:       uint16(n), Offset: uint16(off),
			}).Execute(engineTransport{tp})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r.Data.Buffer...)
		}
		return out
	}
	if got := read(); !bytes.Equal(got, data) {
		t.Fatal("NV_Read does not give the provisioned data")
	}
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	tp2, _ := restarted(t, blob, gt.TPMSUClear)
	if _, got, ok := tp2.NVIndexData(0x01C00002); !ok || !bytes.Equal(got, data) {
		t.Fatal("the provisioned index did not survive a save and restart")
	}
	if err := tp.ProvisionNV(certIndex(0x01C00002), []byte("short")); err != nil {
		t.Fatal(err)
	}
	if _, got, _ := tp.NVIndexData(0x01C00002); string(got) != "short" {
		t.Errorf("replaced index holds %q", got)
	}
}

func TestProvisionNVRefused(t *testing.T) {
	tp, _ := newStarted(t)
	owner := certIndex(0x01C00002)
	owner.Attributes.PlatformCreate = false
	for name, c := range map[string]struct {
		pub  gt.TPMSNVPublic
		data []byte
	}{
		"not platform-created": {owner, []byte{1}},
		"empty":                {certIndex(0x01C00002), nil},
		"too large":            {certIndex(0x01C00002), make([]byte, maxNVIndexSize+1)},
		"not an NV handle":     {certIndex(0x81000001), []byte{1}},
	} {
		if err := tp.ProvisionNV(c.pub, c.data); !errors.Is(err, ErrNVProvision) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, ok := tp.NVIndexData(0x01C00002); ok {
		t.Error("a refused provisioning defined the index")
	}
	// NV memory full: nothing changes.
	for i := range nvIndexMax {
		if err := tp.ProvisionNV(certIndex(0x01500000+uint32(i)), make([]byte, 16)); err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
	}
	if err := tp.ProvisionNV(certIndex(0x01C00002), []byte{1}); !errors.Is(err, ErrNVProvision) {
		t.Errorf("a full NV took one more index: %v", err)
	}
}
