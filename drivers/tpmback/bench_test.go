package tpmback_test

import (
	"testing"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
)

// openFront connects our own frontend (drivers/tpmfront) to the device at
// p: the benchmarks' client.
func openFront(e *env, d *xentest.Domain, p xentest.VTPMPaths) *tpmfront.Front {
	e.t.Helper()
	f, err := tpmfront.Open(e.ctx, tpmfront.Config{Store: d.Store, Pages: d.Sharer(), Events: d.Events})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// BenchmarkRoundTrip is one TPM2_GetRandom(32)-sized exchange from
// tpmfront through the fake Xen (xenstore only at setup; event channels
// and the granted page per command) to tpmback and back. The handler
// answers at once, so this is the split driver's own cost.
func BenchmarkRoundTrip(b *testing.B) {
	e := newEnv(b, 0)
	rsp := make([]byte, 44)
	copy(rsp, []byte{0x80, 0x01, 0, 0, 0, 44, 0, 0, 0, 0, 0, 32})
	e.setHandler(func(*tpmback.Frontend, uint8, []byte) []byte { return rsp })
	d, p := e.addDevice(5)
	f := openFront(e, d, p)
	cmd := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x7b, 0, 32}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Send(e.ctx, 0, cmd); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	f.Close(e.ctx)
}

// BenchmarkRoundTripParallel runs 8 frontends against one backend.
func BenchmarkRoundTripParallel(b *testing.B) {
	e := newEnv(b, 0)
	rsp := []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}
	e.setHandler(func(*tpmback.Frontend, uint8, []byte) []byte { return rsp })
	next := make(chan uint16, 64)
	for i := uint16(0); i < 64; i++ {
		next <- 30 + i
	}
	cmd := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x7b, 0, 32}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		d, p := e.addDevice(<-next)
		f := openFront(e, d, p)
		for pb.Next() {
			if _, err := f.Send(e.ctx, 0, cmd); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
