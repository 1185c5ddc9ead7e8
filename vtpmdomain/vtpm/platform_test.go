package vtpm

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
)

// peerTransport sends as a given frontend.
type peerTransport struct {
	s    *Server
	from Peer
}

func (p peerTransport) Send(cmd []byte) ([]byte, error) { return p.s.Handle(p.from, 0, cmd), nil }

func pcr16(t *testing.T, tr peerTransport) []byte {
	t.Helper()
	r, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(16)}}}}.Execute(tr)
	if err != nil {
		t.Fatalf("PCR_Read: %v", err)
	}
	return r.PCRValues.Digests[0].Buffer
}

// A platform reset from the control domain is _TPM_Init: the TPM wants
// Startup again, PCRs come back reset, NV survives. From any other
// frontend it is an unknown command and changes nothing.
func TestPlatformReset(t *testing.T) {
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	guest := peerTransport{s, Peer{Name: "5/0"}}
	control := peerTransport{s, Peer{Name: "0/0", Control: true}}
	defineNV(t, s)
	if _, err := (tpm2.PCRExtend{PCRHandle: tpm2.AuthHandle{Handle: 16, Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{1}, 32)}}}}).Execute(guest); err != nil {
		t.Fatal(err)
	}
	extended := pcr16(t, guest)
	saves := len(sv.blobs)

	reset := platform.Marshal(platform.CCPlatformReset)
	if err := platform.Check(platform.CCPlatformReset, s.Handle(guest.from, 0, reset)); err == nil {
		t.Fatal("a guest's frontend reset the TPM")
	}
	if !bytes.Equal(pcr16(t, guest), extended) {
		t.Fatal("a refused reset changed PCR 16")
	}
	if rsp := s.Handle(control.from, 0, append(reset[:2:2], 0, 0, 0, 11, 0x20, 0, 0x58, 1, 0)); binary.BigEndian.Uint32(rsp[6:]) != platform.RCSize {
		t.Fatalf("reset with a parameter answered %x", rsp)
	}
	if err := platform.Check(platform.CCPlatformReset, s.Handle(control.from, 0, reset)); err != nil {
		t.Fatal(err)
	}
	if rsp := s.Handle(guest.from, 0, []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}); binary.BigEndian.Uint32(rsp[6:]) != 0x100 {
		t.Fatalf("GetRandom after reset: rc %#x, want TPM_RC_INITIALIZE", binary.BigEndian.Uint32(rsp[6:]))
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(guest); err != nil {
		t.Fatalf("Startup after reset: %v", err)
	}
	if got := pcr16(t, guest); !bytes.Equal(got, make([]byte, 32)) {
		t.Fatalf("PCR 16 after reset and Startup(CLEAR) = %x", got)
	}
	if !nvExists(s) {
		t.Fatal("NV index gone after a platform reset")
	}
	if len(sv.blobs) == saves {
		t.Fatal("Startup(CLEAR) after the reset saved nothing (its reset counter changed)")
	}
	if st := s.Stats(); st.PlatformResets != 1 {
		t.Fatalf("PlatformResets = %d", st.PlatformResets)
	}
}
