package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
)

// engine is the TPM 2.0 engine in-process, started, as a transport.
type engine struct{ tpm *tpm2.TPM }

func (e engine) Send(cmd []byte) ([]byte, error) { return e.tpm.Process(cmd, 0), nil }

func newEngine(t *testing.T) engine {
	t.Helper()
	tp, err := tpm2.New(tpm2.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if rsp := tp.Process([]byte{0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0}, 0); rsp[9] != 0 {
		t.Fatalf("Startup: % x", rsp)
	}
	return engine{tp}
}

// Both roles run their commands against the engine: the hostile one's
// rounds get the answers it expects (a wrong noDA password refused,
// Shutdown and NV writes accepted), the good one's writes all succeed.
func TestRoles(t *testing.T) {
	e := newEngine(t)
	now := time.Now().Unix()
	if err := hostile(e, []string{strconv.FormatInt(now, 10), "1"}); err != nil {
		t.Fatal(err)
	}
	now = time.Now().Unix()
	if err := good(e, []string{strconv.FormatInt(now, 10), "1", strconv.FormatInt(now+1, 10), "1", "200ms"}); err != nil {
		t.Fatal(err)
	}
}
