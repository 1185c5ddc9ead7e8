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

// benchSeal opens a TPM on swtpm behind a command counter and seals a key
// to the default PCRs.
func benchSeal(b *testing.B) (*TPM, *countTPM, []byte, *SealedBlob) {
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
	return tp, ct, key, blob
}

// loopCounted runs op in b.Loop and reports the TPM commands per op.
func loopCounted(b *testing.B, ct *countTPM, op func() error) {
	n0 := ct.n.Load()
	ops := 0
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(ct.n.Load()-n0)/float64(ops), "TPM-cmds/op")
}

// BenchmarkUnseal is a start-up's unseal of a key sealed to the default
// PCRs, on swtpm.
func BenchmarkUnseal(b *testing.B) {
	tp, ct, _, blob := benchSeal(b)
	loopCounted(b, ct, func() error { _, err := tp.Unseal(blob); return err })
}

// BenchmarkSeal is a format's seal to the default PCRs (no NV write once
// the seal epoch exists).
func BenchmarkSeal(b *testing.B) {
	tp, ct, key, _ := benchSeal(b)
	loopCounted(b, ct, func() error { _, err := tp.Seal(key, DefaultSealPCRs); return err })
}
