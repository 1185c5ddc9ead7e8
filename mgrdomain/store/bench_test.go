package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// benchDev is a plain in-memory Device counting flushes and bytes
// written; with XENVTPM_STORE_BENCH_DIR set, the benchmarks use fileDev
// instead, so flushes cost a real fsync.
type benchDev struct {
	buf     []byte
	flushes int
	written int64
	read    int64
}

func (d *benchDev) SectorSize() int { return 512 }
func (d *benchDev) Sectors() uint64 { return uint64(len(d.buf) / 512) }
func (d *benchDev) ReadAt(p []byte, s uint64) error {
	d.read += int64(len(p))
	copy(p, d.buf[s*512:])
	return nil
}
func (d *benchDev) WriteAt(p []byte, s uint64) error {
	copy(d.buf[s*512:], p)
	d.written += int64(len(p))
	return nil
}
func (d *benchDev) Flush() error { d.flushes++; return nil }

type fileDev struct {
	f       *os.File
	sectors uint64
	flushes int
	written int64
	read    int64
}

func (d *fileDev) SectorSize() int { return 512 }
func (d *fileDev) Sectors() uint64 { return d.sectors }
func (d *fileDev) ReadAt(p []byte, s uint64) error {
	d.read += int64(len(p))
	_, err := d.f.ReadAt(p, int64(s*512))
	return err
}
func (d *fileDev) WriteAt(p []byte, s uint64) error {
	d.written += int64(len(p))
	_, err := d.f.WriteAt(p, int64(s*512))
	return err
}
func (d *fileDev) Flush() error { d.flushes++; return d.f.Sync() }

type counting interface {
	Device
	counts() (flushes int, written int64)
	bytesRead() int64
}

func (d *benchDev) counts() (int, int64) { return d.flushes, d.written }
func (d *fileDev) counts() (int, int64)  { return d.flushes, d.written }
func (d *benchDev) bytesRead() int64     { return d.read }
func (d *fileDev) bytesRead() int64      { return d.read }

func benchSizes() []int {
	v := os.Getenv("XENVTPM_STORE_BENCH_RECORDS")
	if v == "" {
		return []int{10, 10000} // add 1000000 through the variable
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// benchStore builds a store of n records inserted in random order.
func benchStore(b *testing.B, n int) (counting, *Store) {
	pages := uint64(n)*600/PageSize + 1024 // room for a batch rewriting the tree
	var d counting
	if dir := os.Getenv("XENVTPM_STORE_BENCH_DIR"); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("store-bench-%d.img", n)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
		if err := f.Truncate(int64(pages * PageSize)); err != nil {
			b.Fatal(err)
		}
		d = &fileDev{f: f, sectors: pages * PageSize / 512}
	} else {
		d = &benchDev{buf: make([]byte, pages*PageSize)}
	}
	s, err := Format(d, testKey, 0)
	if err != nil {
		b.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(uint64(n), 1)).Perm(n)
	for lo := 0; lo < n; lo += 100000 {
		var bt Batch
		for _, i := range perm[lo:min(lo+100000, n)] {
			bt.Put(uuidN(i), recN(i, 0))
		}
		if err := s.Commit(&bt); err != nil {
			b.Fatal(err)
		}
	}
	return d, s
}

// BenchmarkStore prints lookup, update (one durable commit each), insert
// and open times and disk use at each size in XENVTPM_STORE_BENCH_RECORDS
// (default 10 and 10000; set e.g. 10,10000,1000000 for the 1M figures).
func BenchmarkStore(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			d, s := benchStore(b, n)
			s, err := Open(d, testKey, Options{})
			if err != nil {
				b.Fatal(err)
			}
			info := s.Info()
			b.Logf("%d records: height %d, %d tree pages, %d pages in use", n, info.Height, info.TreePages, info.UsedPages)
			r := rand.New(rand.NewPCG(9, 9))
			b.Run("lookup", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.Get(uuidN(r.IntN(n))); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("update", func(b *testing.B) {
				f0, w0 := d.counts()
				for b.Loop() {
					i := r.IntN(n)
					if err := s.Put(uuidN(i), recN(i, 1)); err != nil {
						b.Fatal(err)
					}
				}
				f1, w1 := d.counts()
				b.ReportMetric(float64(f1-f0)/float64(b.N), "flushes/op")
				b.ReportMetric(float64(w1-w0)/float64(b.N), "disk-bytes-written/op")
			})
			b.Run("open", func(b *testing.B) {
				r0 := d.bytesRead()
				for b.Loop() {
					if _, err := Open(d, testKey, Options{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(info.TreePages*PageSize)/float64(n), "disk-bytes/record")
				b.ReportMetric(float64(info.Height), "tree-height")
				b.ReportMetric(float64(d.bytesRead()-r0)/float64(b.N), "disk-bytes-read/op")
			})
			b.Run("insert", func(b *testing.B) {
				next := n
				for b.Loop() {
					if err := s.Put(uuidN(next), recN(next, 0)); err != nil {
						b.Fatal(err)
					}
					next++
				}
			})
		})
	}
}
