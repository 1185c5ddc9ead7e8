package tpm12

import (
	"encoding/binary"
	"sync"
	"testing"
)

// manufactured is one manufactured state, shared by the tests: making an
// endorsement key costs far more than a test.
var manufactured = sync.OnceValues(func() ([]byte, error) {
	tp, err := New(Config{})
	if err != nil {
		return nil, err
	}
	return tp.Save()
})

// newTPM returns a TPM from the shared manufactured state, after _TPM_Init.
func newTPM(t testing.TB) *TPM {
	t.Helper()
	blob, err := manufactured()
	if err != nil {
		t.Fatal(err)
	}
	tp, err := New(Config{State: blob})
	if err != nil {
		t.Fatal(err)
	}
	onPanic = func(r any, stack []byte) { t.Errorf("panic: %v\n%s", r, stack) }
	return tp
}

// startedTPM returns a TPM after Startup(ST_CLEAR).
func startedTPM(t testing.TB) *TPM {
	t.Helper()
	tp := newTPM(t)
	if rc, _ := run(tp, 0, tagRquCommand, ordStartup, u16(stClear)); rc != rcSuccess {
		t.Fatalf("Startup: %#x", rc)
	}
	return tp
}

// command builds a command from its tag, ordinal and parameter pieces.
func command(tag uint16, ord uint32, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tag)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, ord)
	for _, p := range parts {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

// run sends a command at locality and returns the response code and
// parameters, checking the response header.
func run(tp *TPM, locality uint8, tag uint16, ord uint32, parts ...[]byte) (uint32, []byte) {
	rsp := tp.Process(command(tag, ord, parts...), locality)
	if len(rsp) < 10 || binary.BigEndian.Uint32(rsp[2:]) != uint32(len(rsp)) {
		panic("malformed response")
	}
	return binary.BigEndian.Uint32(rsp[6:]), rsp[10:]
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// mustRun is run at locality 0 with tag TPM_TAG_RQU_COMMAND, failing the
// test unless the command succeeds.
func mustRun(t testing.TB, tp *TPM, ord uint32, parts ...[]byte) []byte {
	t.Helper()
	rc, out := run(tp, 0, tagRquCommand, ord, parts...)
	if rc != rcSuccess {
		t.Fatalf("ordinal %#x: rc %#x", ord, rc)
	}
	return out
}

// wantRC runs a command and checks its response code.
func wantRC(t testing.TB, tp *TPM, want uint32, locality uint8, tag uint16, ord uint32, parts ...[]byte) []byte {
	t.Helper()
	rc, out := run(tp, locality, tag, ord, parts...)
	if rc != want {
		t.Fatalf("ordinal %#x at locality %d: rc %#x, want %#x", ord, locality, rc, want)
	}
	return out
}

// getCap runs GetCapability and returns the capability data.
func getCap(t testing.TB, tp *TPM, area uint32, sub []byte) []byte {
	t.Helper()
	out := mustRun(t, tp, ordGetCapability, u32(area), u32(uint32(len(sub))), sub)
	if n := binary.BigEndian.Uint32(out); int(n) != len(out)-4 {
		t.Fatalf("capability %#x: respSize %d of %d bytes", area, n, len(out)-4)
	}
	return out[4:]
}
