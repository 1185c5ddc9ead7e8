package hwtpm

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
)

// countTPM counts the commands sent to the TPM.
type countTPM struct {
	tr transport.TPM
	n  atomic.Int64
}

func (c *countTPM) Send(cmd []byte) ([]byte, error) { c.n.Add(1); return c.tr.Send(cmd) }

// BenchmarkUnseal is a start-up's unseal of a key sealed to the default
// PCRs, on swtpm.
func BenchmarkUnseal(b *testing.B) {
	s := swtpmtest.StartSwtpm(b, "")
	ct := &countTPM{tr: s.TPM()}
	tp, err := Open(ct, Config{})
	if err != nil {
		b.Fatal(err)
	}
	key := bytes.Repeat([]byte{1}, 32)
	blob, err := tp.Seal(key, DefaultSealPCRs)
	if err != nil {
		b.Fatal(err)
	}
	n0 := ct.n.Load()
	ops := 0
	for b.Loop() {
		if _, err := tp.Unseal(blob); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(ct.n.Load()-n0)/float64(ops), "TPM-cmds/op")
}

// BenchmarkSeal is a format's seal to the default PCRs (no NV write once
// the seal epoch exists).
func BenchmarkSeal(b *testing.B) {
	s := swtpmtest.StartSwtpm(b, "")
	ct := &countTPM{tr: s.TPM()}
	tp, err := Open(ct, Config{})
	if err != nil {
		b.Fatal(err)
	}
	key := bytes.Repeat([]byte{1}, 32)
	if _, err := tp.Seal(key, DefaultSealPCRs); err != nil {
		b.Fatal(err)
	}
	n0 := ct.n.Load()
	ops := 0
	for b.Loop() {
		if _, err := tp.Seal(key, DefaultSealPCRs); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(ct.n.Load()-n0)/float64(ops), "TPM-cmds/op")
}
