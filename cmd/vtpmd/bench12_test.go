package main

import (
	"crypto/sha1"
	"fmt"
	"net"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// BenchmarkTPM12 is BenchmarkTPM for the TPM 1.2: raw commands against
// the engine in-process, vtpmd -family 1.2 over its swtpm data socket,
// and Debian's swtpm in TPM 1.2 mode, e.g.
//
//	go test -run X -bench TPM12 -benchtime 1000x ./cmd/vtpmd/
func BenchmarkTPM12(b *testing.B) {
	targets := []target{
		{"engine", func(b *testing.B) transport.TPM {
			t, err := tpm12.New(tpm12.Config{})
			if err != nil {
				b.Fatal(err)
			}
			return inProc12{t}
		}},
		{"vtpmd-raw", func(b *testing.B) transport.TPM {
			td := startDaemonFamily(b, b.TempDir(), family12)
			c, err := net.Dial("tcp", td.swtpm)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return swtpmtest.Conn{C: c}
		}},
		{"swtpm", func(b *testing.B) transport.TPM { return swtpmtest.Start12(b) }},
	}
	m := sha1.Sum([]byte("bench"))
	ops := []struct {
		name string
		cmd  []byte
	}{
		{"GetRandom32", cmd12(0x46, u32(32))},
		{"Extend", cmd12(ord12Extend, u32(10), m[:])},
		{"PcrRead", cmd12(ord12PCRRead, u32(10))},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			for _, op := range ops {
				b.Run(op.name, func(b *testing.B) {
					tr := tg.open(b)
					if err := send12OK(tr, cmd12(ord12Startup, u16(st12Clear))); err != nil {
						b.Fatal(err)
					}
					measure(b, func(int) error { return send12OK(tr, op.cmd) })
				})
			}
		})
	}
}

type inProc12 struct{ t *tpm12.TPM }

func (p inProc12) Send(cmd []byte) ([]byte, error) { return p.t.Process(cmd, 0), nil }

func send12OK(tr transport.TPM, cmd []byte) error {
	rsp, err := tr.Send(cmd)
	if err != nil {
		return err
	}
	if len(rsp) < 10 || rsp[6]|rsp[7]|rsp[8]|rsp[9] != 0 {
		return fmt.Errorf("ordinal % x: answer % x", cmd[6:10], rsp)
	}
	return nil
}
