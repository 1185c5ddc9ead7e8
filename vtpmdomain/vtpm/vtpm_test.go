package vtpm

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

func TestParsePCRSpec(t *testing.T) {
	for in, want := range map[string][]int{
		"none":       nil,
		"0":          {0},
		"0,8,9-11,9": {0, 8, 9, 10, 11},
		"23":         {23},
	} {
		got, err := ParsePCRSpec(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParsePCRSpec(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if all, _ := ParsePCRSpec("all"); len(all) != NumPCRs {
		t.Errorf("all = %v", all)
	}
	for _, bad := range []string{"", "24", "-1", "3-1", "a", "1,,2", "1-"} {
		if _, err := ParsePCRSpec(bad); err == nil {
			t.Errorf("ParsePCRSpec(%q) accepted", bad)
		}
	}
}

func TestOptions(t *testing.T) {
	v, err := Spec().Parse("save maintcmds=1 hwinitpcr=0-7")
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(v)
	if err != nil || o.Startup != StartupSave || !o.MaintCmds || len(o.HWInitPCR) != 8 {
		t.Fatalf("%+v %v", o, err)
	}
	v, _ = Spec().Parse("clear deactivated")
	if _, err := ParseOptions(v); err == nil || !strings.Contains(err.Error(), "at most one") {
		t.Fatalf("two startup modes: %v", err)
	}
	v, _ = Spec().Parse("")
	if o, _ := ParseOptions(v); o.Startup != StartupClear || o.MaintCmds {
		t.Fatalf("defaults: %+v", o)
	}
}

type nopLog struct{}

func (nopLog) Infof(string, ...any)  {}
func (nopLog) Debugf(string, ...any) {}
func (nopLog) Errorf(string, ...any) {}

type serverTransport struct{ s *Server }

func (st serverTransport) Send(cmd []byte) ([]byte, error) {
	return st.s.Handle(Peer{Name: "test"}, 0, cmd), nil
}

var _ transport.TPM = serverTransport{}

func TestServerStartsAsTold(t *testing.T) {
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	// Started: GetRandom works at once (the guest kernel never sends Startup).
	if _, err := (tpm2.GetRandom{BytesRequested: 8}).Execute(serverTransport{s}); err != nil {
		t.Fatalf("GetRandom after clear start: %v", err)
	}
	d, err := NewServer(Config{Options: Options{Startup: StartupDeactivated}, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	rsp := d.Handle(Peer{Name: "test"}, 0, []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8})
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0x100 {
		t.Fatalf("un-started TPM answered rc %#x, want TPM_RC_INITIALIZE", rc)
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(serverTransport{d}); err != nil {
		t.Fatalf("guest Startup: %v", err)
	}
}
