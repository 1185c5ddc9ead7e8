package console

import (
	"bytes"
	"testing"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// drain plays xenconsoled: it consumes everything produced so far.
func drain(p *shm.Page) []byte {
	var out []byte
	cons, prod := p.Load32(outCons), p.Load32(outProd)
	for ; cons != prod; cons++ {
		out = append(out, p.Bytes()[outOff+int(cons%outSize)])
	}
	p.Store32(outCons, cons)
	return out
}

func TestWriteWrapsAndNotifiesPerLine(t *testing.T) {
	p := shm.New(make([]byte, 4096))
	// Free-running indices close to wrapping, as after a long uptime.
	p.Store32(outCons, 0xfffffff0)
	p.Store32(outProd, 0xfffffff0)
	notes := 0
	r := New(p, func() { notes++ })
	msg := []byte("hello\nworld\n")
	for _, c := range msg {
		r.WriteByte(c)
	}
	if notes != 2 {
		t.Fatalf("notified %d times, want 2 (one per line)", notes)
	}
	if got := drain(p); !bytes.Equal(got, msg) {
		t.Fatalf("ring holds %q", got)
	}
}

func TestFullRingWaitsForConsumerThenDrops(t *testing.T) {
	p := shm.New(make([]byte, 4096))
	consumed := 0
	var r *Ring
	r = New(p, func() {
		// A consumer that reads only the first time it is kicked.
		if consumed == 0 {
			consumed = len(drain(p))
		}
	})
	r.spins = 100
	big := bytes.Repeat([]byte("x"), outSize)
	for _, c := range big {
		r.WriteByte(c)
	}
	// Ring now full; the next byte kicks the consumer, which drains it.
	r.WriteByte('y')
	if consumed != outSize || r.Dropped() != 0 {
		t.Fatalf("consumed %d dropped %d", consumed, r.Dropped())
	}
	// Fill again: the consumer no longer reads, so bytes are dropped, not hung on.
	for i := 0; i < outSize+5; i++ {
		r.WriteByte('z')
	}
	if r.Dropped() != 6 {
		t.Fatalf("dropped %d, want 6", r.Dropped())
	}
}
