package vtpm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
)

func TestLocalityOption(t *testing.T) {
	v, err := Spec().Parse("")
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(v)
	if err != nil {
		t.Fatal(err)
	}
	for l := 0; l < 256; l++ {
		if want := l <= 3; o.Localities.Allows(uint8(l)) != want || (Localities{}).Allows(uint8(l)) != want {
			t.Errorf("default: locality %d allowed = %v, want %v", l, !want, want)
		}
	}
	for in, want := range map[string]string{
		"0":          "0",
		"0-4":        "0-4",
		"3,0-1,32":   "0-1,3,32",
		"255,254":    "254-255",
		"0-2,2-3,77": "0-3,77",
	} {
		v, err := Spec().Parse("locality=" + in)
		if err != nil {
			t.Errorf("locality=%s: %v", in, err)
			continue
		}
		o, err := ParseOptions(v)
		if err != nil || o.Localities.String() != want {
			t.Errorf("locality=%s: %v %v, want %s", in, o.Localities, err, want)
		}
	}
	for in, why := range map[string]string{
		"256":         "not a locality number",
		"4-1":         "runs backwards",
		"x":           "not a locality number",
		"0,,1":        "not a locality number",
		"label=0,1":   "XSM label",
		"*_t=0-3":     "XSM label",
		"-1":          "not a locality number",
		"0-3,4-":      "not a locality number",
		"99999999999": "not a locality number",
	} {
		_, err := Spec().Parse("locality=" + in)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("locality=%s: %v, want an error saying %q", in, err, why)
		}
	}
}

// localityTransport sends as peer at a locality.
type localityTransport struct {
	s    *Server
	from Peer
	loc  uint8
}

func (l localityTransport) Send(cmd []byte) ([]byte, error) {
	return l.s.Handle(l.from, l.loc, cmd), nil
}

func readPCR(t *testing.T, s *Server, i uint) []byte {
	t.Helper()
	r, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(i)}}}}.Execute(serverTransport{s})
	if err != nil {
		t.Fatalf("PCR_Read: %v", err)
	}
	return r.PCRValues.Digests[0].Buffer
}

// A guest cannot claim locality 4 and reset the D-RTM PCRs, neither
// through its own frontend nor through dom0's, which passes an HVM
// guest's locality on; inside the allowed set commands run as before.
func TestLocalityFromFrontends(t *testing.T) {
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	drtm := readPCR(t, s, 17)
	if !bytes.Equal(drtm, bytes.Repeat([]byte{0xFF}, 32)) {
		t.Fatalf("PCR 17 starts at %x", drtm)
	}
	reset17 := tpm2.PCRReset{PCRHandle: tpm2.AuthHandle{Handle: 17, Auth: tpm2.PasswordAuth(nil)}}
	for _, from := range []Peer{{Name: "5/0"}, {Name: "0/0", Control: true}} {
		for _, loc := range []uint8{4, 5, 32, 255} {
			_, err := reset17.Execute(localityTransport{s, from, loc})
			if rc, ok := err.(tpm2.TPMRC); !ok || uint32(rc) != rcLocality {
				t.Errorf("%s: PCR_Reset(17) at locality %d: %v, want TPM_RC_LOCALITY", from.Name, loc, err)
			}
		}
	}
	if got := readPCR(t, s, 17); !bytes.Equal(got, drtm) {
		t.Fatalf("PCR 17 = %x after refused resets", got)
	}
	if st := s.Stats(); st.LocalityRefused != 8 {
		t.Errorf("LocalityRefused = %d, want 8", st.LocalityRefused)
	}
	// Locality 2 may reset PCR 22 (PTP), so the command reached the TPM.
	if _, err := (tpm2.PCRReset{PCRHandle: tpm2.AuthHandle{Handle: 22, Auth: tpm2.PasswordAuth(nil)}}).Execute(localityTransport{s, Peer{Name: "5/0"}, 2}); err != nil {
		t.Errorf("PCR_Reset(22) at locality 2: %v", err)
	}
	// The control domain's platform reset is not a command at a locality.
	if err := platform.Check(platform.CCPlatformReset, s.Handle(Peer{Name: "0/0", Control: true}, 4, platform.Marshal(platform.CCPlatformReset))); err != nil {
		t.Errorf("platform reset: %v", err)
	}

	// locality=0-4 lets locality 4 through.
	v, err := Spec().Parse("locality=0-4")
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(v)
	if err != nil {
		t.Fatal(err)
	}
	s4, err := NewServer(Config{Options: o, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reset17.Execute(localityTransport{s4, Peer{Name: "5/0"}, 4}); err != nil {
		t.Fatalf("locality=0-4: PCR_Reset(17) at locality 4: %v", err)
	}
	if got := readPCR(t, s4, 17); !bytes.Equal(got, make([]byte, 32)) {
		t.Fatalf("locality=0-4: PCR 17 = %x after a reset at locality 4", got)
	}
}
