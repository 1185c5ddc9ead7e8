package tpm12

import (
	"bytes"
	"testing"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
)

// The platform's EK certificate: readable by the guest without
// authorization in the PC Client framing, locked against the owner's
// writes once NV is locked, kept by OwnerClear and by Save/Load.
func TestProvisionEKCert(t *testing.T) {
	tp, _ := ownedTPM(t)
	der := bytes.Repeat([]byte{0x30}, 700)
	if err := tp.ProvisionEKCert(der); err != nil {
		t.Fatal(err)
	}
	if !tp.NVChanged() {
		t.Error("provisioning did not report an NV change")
	}
	got := mustRun(t, tp, ordNVReadValue, nvReadParams(NVIndexEKCert, 0, 7+700))
	if c, err := ekcert.Unframe12(got[4:]); err != nil || !bytes.Equal(c, der) {
		t.Fatalf("read back: %v", err)
	}
	if c, ok := tp.EKCert(); !ok || !bytes.Equal(c, der) {
		t.Fatal("EKCert")
	}
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(nvIndexLock, 0, 0), make([]byte, 20))
	wantRC(t, tp, rcAreaLocked, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(NVIndexEKCert, 0, []byte("x")))
	if rc, _ := ownerRun(t, tp, testOwner, ordNVWriteValue, nvWriteParams(NVIndexEKCert, 0, []byte("x"))); rc == rcSuccess {
		t.Error("the owner wrote the EK certificate's index")
	}
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(NVIndexEKCert, 0, 0), make([]byte, 20)); rc != rcBadIndex {
		t.Errorf("the owner's delete: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerClear, nil); rc != rcSuccess {
		t.Fatalf("OwnerClear: rc %#x", rc)
	}
	state, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	tp2, err := New(Config{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tp2.EKCert(); !ok || !bytes.Equal(c, der) {
		t.Fatal("the certificate did not survive OwnerClear and Save/Load")
	}
	// A second provisioning replaces it; a certificate too large for NV
	// is refused and changes nothing.
	if err := tp2.ProvisionEKCert(der[:600]); err != nil {
		t.Fatal(err)
	}
	if err := tp2.ProvisionEKCert(make([]byte, nvSpaceMax)); err == nil {
		t.Error("a certificate larger than NV stored")
	}
	if c, _ := tp2.EKCert(); len(c) != 600 {
		t.Errorf("after replacing: %d bytes", len(c))
	}
	if _, err := ekcert.Unframe12(got[4:10]); err == nil {
		t.Error("a cut framing parsed")
	}
	if pub, err := tp2.EKPublic(); err != nil || len(pub) < 256 {
		t.Errorf("EKPublic: %d bytes, %v", len(pub), err)
	}
}
