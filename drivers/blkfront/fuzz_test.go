package blkfront_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/blkfront"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
)

// FuzzResponses lets the fuzzer rewrite every response the fake backend
// publishes (17 input bytes each: 16 XORed into the response, one that may
// push rsp_prod past it) while the frontend writes, reads and flushes.
// Whatever comes back, every call must return, with nil or a known error;
// a read that succeeds must return what was written; and Close must give
// back every grant and event channel.
func FuzzResponses(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 17*8))
	// Status becomes BLKIF_RSP_ERROR (-1) on the first response.
	f.Add(append(make([]byte, 10), 0xff, 0xff, 0, 0, 0, 0, 0, 0))
	// Wrong id on the first response.
	f.Add(append([]byte{0x01}, make([]byte, 16)...))
	// Wrong operation on the second response.
	f.Add(append(make([]byte, 17+8), 0x02))
	// rsp_prod runs ahead of the requests.
	f.Add(append(make([]byte, 16), 0x7f))
	f.Fuzz(func(t *testing.T, data []byte) {
		var mu sync.Mutex
		tamper := func(rsp []byte) uint32 {
			mu.Lock()
			defer mu.Unlock()
			if len(data) < 17 {
				return 0
			}
			for i := 0; i < 16; i++ {
				rsp[i] ^= data[i]
			}
			extra := uint32(0)
			if data[16]&3 == 3 {
				extra = uint32(data[16] >> 2)
			}
			data = data[17:]
			return extra
		}
		b := newBed(t, 256<<10, xentest.BlkbackConfig{FlushCache: true, Tamper: tamper})
		d := b.open()
		known := func(err error) bool {
			return err == nil || errors.Is(err, blkfront.ErrIO) || errors.Is(err, blkfront.ErrNotSupported) ||
				errors.Is(err, blkfront.ErrProtocol) || errors.Is(err, context.DeadlineExceeded)
		}
		call := func(name string, fn func(ctx context.Context) error) error {
			ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
			defer cancel()
			err := fn(ctx)
			if !known(err) {
				t.Fatalf("%s: unexpected error %v", name, err)
			}
			return err
		}
		for i, n := range []int{4096, 512, 45056, 8192} {
			want := pattern(n, byte(i))
			sector := uint64(i * 100)
			call("write", func(ctx context.Context) error { return d.WriteAtContext(ctx, want, sector) })
			call("flush", d.FlushContext)
			got := make([]byte, n)
			if call("read", func(ctx context.Context) error { return d.ReadAtContext(ctx, got, sector) }) == nil {
				if disk := b.disk.Data(); !bytes.Equal(got, disk[sector*512:sector*512+uint64(n)]) {
					t.Fatalf("read of %d bytes succeeded with data not on the disk", n)
				}
			}
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		d.Close(ctx)
		if got := b.fe.Grants.Free(); got != b.freeGrants {
			t.Errorf("after Close %d grant refs free, want %d", got, b.freeGrants)
		}
		if got := b.fe.Ports(); got != b.ports {
			t.Errorf("after Close %d event channels, want %d", got, b.ports)
		}
	})
}

func benchIO(bm *testing.B, size int, write bool) {
	b := newBed(bm, 8<<20, xentest.BlkbackConfig{FlushCache: true})
	d := b.open()
	defer b.closeClean(d)
	buf := pattern(size, 1)
	span := uint64(8<<20) / uint64(size)
	bm.SetBytes(int64(size))
	bm.ResetTimer()
	for i := 0; i < bm.N; i++ {
		sector := (uint64(i) % span) * uint64(size) / 512
		var err error
		if write {
			err = d.WriteAt(buf, sector)
		} else {
			err = d.ReadAt(buf, sector)
		}
		if err != nil {
			bm.Fatal(err)
		}
	}
}

func BenchmarkRead4K(b *testing.B)   { benchIO(b, 4096, false) }
func BenchmarkWrite4K(b *testing.B)  { benchIO(b, 4096, true) }
func BenchmarkRead44K(b *testing.B)  { benchIO(b, 45056, false) }
func BenchmarkWrite44K(b *testing.B) { benchIO(b, 45056, true) }
