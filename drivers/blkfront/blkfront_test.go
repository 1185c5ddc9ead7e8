package blkfront_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/blkfront"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

const (
	beDom = 0
	feDom = 5
	devid = 51712 // xvda
)

type bed struct {
	t     testing.TB
	ctx   context.Context
	x     *xentest.Xen
	be    *xentest.Domain
	fe    *xentest.Domain
	paths xentest.VBDPaths
	disk  *xentest.MemDisk
	back  *xentest.Blkback

	freeGrants int
	ports      int
	logMu      sync.Mutex
	logs       []string
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newBed starts a fake Xen with a backend domain serving a size-byte
// memory disk to a frontend domain.
func newBed(t testing.TB, size int, cfg xentest.BlkbackConfig) *bed {
	t.Helper()
	b := &bed{t: t, ctx: testCtx(t), x: xentest.New()}
	b.be = b.x.AddDomain(t, beDom, 1024)
	b.fe = b.x.AddDomain(t, feDom, 0)
	var err error
	if b.paths, err = b.x.AddVBD(b.ctx, beDom, feDom, devid); err != nil {
		t.Fatal(err)
	}
	b.disk = xentest.NewMemDisk(size)
	b.back = xentest.ServeVBD(t, b.be, feDom, b.paths, b.disk, cfg)
	b.freeGrants = b.fe.Grants.Free()
	b.ports = b.fe.Ports()
	return b
}

func (b *bed) config() blkfront.Config {
	return blkfront.Config{
		Store:   b.fe.Store,
		Grants:  b.fe.Grants,
		Events:  b.fe.Events,
		NewPage: b.fe.NewPage,
		Timeout: 20 * time.Second,
		Logf: func(format string, a ...any) {
			s := fmt.Sprintf(format, a...)
			b.logMu.Lock()
			b.logs = append(b.logs, s)
			b.logMu.Unlock()
			b.t.Log(s)
		},
	}
}

func (b *bed) open() *blkfront.Device {
	b.t.Helper()
	d, err := blkfront.Open(b.ctx, b.config())
	if err != nil {
		b.t.Fatalf("Open: %v", err)
	}
	return d
}

// closeClean closes d and checks nothing is left: no grant, no event
// channel, no foreign mapping in the backend.
func (b *bed) closeClean(d *blkfront.Device) {
	b.t.Helper()
	if err := d.Close(b.ctx); err != nil {
		b.t.Fatalf("Close: %v", err)
	}
	if got := b.fe.Grants.Free(); got != b.freeGrants {
		b.t.Errorf("after Close %d grant refs free, want %d", got, b.freeGrants)
	}
	if got := b.fe.Ports(); got != b.ports {
		b.t.Errorf("after Close %d event channels, want %d", got, b.ports)
	}
	if got := b.be.Mapper.Live(); got != 0 {
		b.t.Errorf("after Close the backend still maps %d pages", got)
	}
}

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7+i>>9) ^ seed
	}
	return p
}

func TestHandshakeAndGeometry(t *testing.T) {
	b := newBed(t, 1<<20, xentest.BlkbackConfig{FlushCache: true, PhysicalSectorSize: 4096})
	d := b.open()
	if d.SectorSize() != 512 || d.Sectors() != 2048 || d.PhysicalSectorSize() != 4096 || d.ReadOnly() || d.FlushMethod() != "flush-cache" {
		t.Errorf("geometry: sector-size %d sectors %d physical %d ro %v flush %s", d.SectorSize(), d.Sectors(), d.PhysicalSectorSize(), d.ReadOnly(), d.FlushMethod())
	}
	if d.Node() != "device/vbd/51712" {
		t.Errorf("Node() = %q", d.Node())
	}
	for k, want := range map[string]string{"protocol": "x86_64-abi", "state": "4"} {
		if v, _ := b.x.Store.Get(b.paths.Frontend + "/" + k); v != want {
			t.Errorf("frontend %s = %q, want %q", k, v, want)
		}
	}
	if _, ok := b.x.Store.Get(b.paths.Frontend + "/ring-ref"); !ok {
		t.Error("no ring-ref written")
	}
	b.closeClean(d)
	if v, _ := b.x.Store.Get(b.paths.Frontend + "/ring-ref"); v != "" {
		t.Errorf("ring-ref left after Close: %q", v)
	}
	// The device can be opened again after Close.
	d = b.open()
	if err := d.WriteAt(pattern(512, 1), 3); err != nil {
		t.Fatal(err)
	}
	b.closeClean(d)
}

func TestReadWriteRoundTrips(t *testing.T) {
	b := newBed(t, 4<<20, xentest.BlkbackConfig{FlushCache: true})
	d := b.open()
	defer b.closeClean(d)
	// One sector, one page, a 44 KiB (11-segment) request, a partial last
	// segment, and 200 KiB split into several requests.
	for i, c := range []struct {
		sector uint64
		n      int
	}{{0, 512}, {7, 4096}, {100, 11 * 4096}, {300, 5*4096 + 1536}, {1000, 200 << 10}, {8191, 512}} {
		want := pattern(c.n, byte(i))
		if err := d.WriteAt(want, c.sector); err != nil {
			t.Fatalf("write %d bytes at %d: %v", c.n, c.sector, err)
		}
		got := make([]byte, c.n)
		if err := d.ReadAt(got, c.sector); err != nil {
			t.Fatalf("read %d bytes at %d: %v", c.n, c.sector, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read back %d bytes at %d differs", c.n, c.sector)
		}
		if disk := b.disk.Data(); !bytes.Equal(disk[c.sector*512:c.sector*512+uint64(c.n)], want) {
			t.Fatalf("backend's medium does not hold the %d bytes written at %d", c.n, c.sector)
		}
	}
	// The 44 KiB request went as one request of 88 units.
	if !contains(b.disk.Ops(), "write 100+88") {
		t.Errorf("no single 11-segment write in %v", b.disk.Ops())
	}
}

func contains(ops []string, op string) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func TestLargeSectorSize(t *testing.T) {
	b := newBed(t, 1<<20, xentest.BlkbackConfig{SectorSize: 4096})
	d := b.open()
	defer b.closeClean(d)
	if d.SectorSize() != 4096 || d.Sectors() != 256 {
		t.Fatalf("sector-size %d sectors %d, want 4096 and 256", d.SectorSize(), d.Sectors())
	}
	want := pattern(3*4096, 9)
	if err := d.WriteAt(want, 10); err != nil {
		t.Fatal(err)
	}
	// Sector 10 of 4 KiB is byte 40960; the wire counts 512-byte units.
	if disk := b.disk.Data(); !bytes.Equal(disk[40960:40960+len(want)], want) {
		t.Fatal("data not at sector 10 * 4096")
	}
	if !contains(b.disk.Ops(), "write 80+24") {
		t.Errorf("wire request not in 512-byte units: %v", b.disk.Ops())
	}
	if err := d.WriteAt(make([]byte, 512), 0); !errors.Is(err, blkfront.ErrAlign) {
		t.Errorf("512 bytes on a 4096-byte-sector disk: %v, want ErrAlign", err)
	}
}

func TestBadRequestsRefused(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{})
	d := b.open()
	defer b.closeClean(d)
	for _, c := range []struct {
		name   string
		n      int
		sector uint64
		want   error
	}{
		{"unaligned length", 100, 0, blkfront.ErrAlign},
		{"past the end", 1024, 127, blkfront.ErrRange},
		{"start past the end", 512, 128, blkfront.ErrRange},
		{"huge sector", 512, 1 << 63, blkfront.ErrRange},
		{"larger than the disk", 128 << 10, 0, blkfront.ErrRange},
	} {
		err := d.WriteAt(make([]byte, c.n), c.sector)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: write: %v, want %v", c.name, err, c.want)
		}
		if err := d.ReadAt(make([]byte, c.n), c.sector); !errors.Is(err, c.want) {
			t.Errorf("%s: read: %v, want %v", c.name, err, c.want)
		}
	}
	if n := b.back.Served(); n != 0 {
		t.Errorf("refused requests reached the backend: %d served", n)
	}
	// The last sector is fine.
	if err := d.WriteAt(make([]byte, 512), 127); err != nil {
		t.Errorf("last sector: %v", err)
	}
}

func TestReadOnlyDisk(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{Info: blkfront.VDiskReadOnly})
	d := b.open()
	defer b.closeClean(d)
	if !d.ReadOnly() {
		t.Fatal("info=4 not seen as read-only")
	}
	if err := d.WriteAt(make([]byte, 512), 0); !errors.Is(err, blkfront.ErrReadOnly) {
		t.Errorf("write to read-only disk: %v", err)
	}
	if err := d.ReadAt(make([]byte, 512), 0); err != nil {
		t.Errorf("read from read-only disk: %v", err)
	}
}

func TestFlushOrdering(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    xentest.BlkbackConfig
		method string
		op     string
	}{
		{"flush-cache", xentest.BlkbackConfig{FlushCache: true, Barrier: true}, "flush-cache", "flush"},
		{"barrier", xentest.BlkbackConfig{Barrier: true}, "barrier", "barrier"},
		{"none", xentest.BlkbackConfig{}, "none", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBed(t, 64<<10, c.cfg)
			d := b.open()
			defer b.closeClean(d)
			if d.FlushMethod() != c.method {
				t.Fatalf("FlushMethod %s, want %s", d.FlushMethod(), c.method)
			}
			want := pattern(8192, 3)
			if err := d.WriteAt(want, 16); err != nil {
				t.Fatal(err)
			}
			if err := d.Flush(); err != nil {
				t.Fatal(err)
			}
			ops := b.disk.Ops()
			if c.op == "" {
				if len(ops) != 1 {
					t.Errorf("write-through backend got %v, want only the write", ops)
				}
				return
			}
			if len(ops) != 2 || ops[0] != "write 16+16" || ops[1] != c.op {
				t.Fatalf("backend saw %v, want the write then %s", ops, c.op)
			}
			if !bytes.Equal(b.disk.Durable()[16*512:16*512+8192], want) {
				t.Error("written data not durable after Flush")
			}
			// A write after the flush is not durable until the next one.
			if err := d.WriteAt(pattern(512, 4), 0); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(b.disk.Durable()[:512], pattern(512, 4)) {
				t.Error("the medium model does not model a volatile cache")
			}
		})
	}
}

func TestBackendErrors(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{FlushCache: true, Status: func(op uint8, sector uint64, nseg int) int16 {
		switch {
		case op == xentest.BlkOpWrite && sector == 8:
			return xentest.BlkRspError
		case op == xentest.BlkOpRead && sector == 16:
			return xentest.BlkRspEOPNOTSUPP
		case op == xentest.BlkOpFlush:
			return xentest.BlkRspEOPNOTSUPP
		case sector == 24:
			return 7 // no such status
		}
		return xentest.BlkRspOkay
	}})
	d := b.open()
	defer b.closeClean(d)
	err := d.WriteAt(make([]byte, 1024), 8)
	if !errors.Is(err, blkfront.ErrIO) || !strings.Contains(err.Error(), "write of 1024 bytes at sector 8") || !strings.Contains(err.Error(), b.paths.Frontend[len("/local/domain/5/"):]) {
		t.Errorf("BLKIF_RSP_ERROR: %v", err)
	}
	if err := d.ReadAt(make([]byte, 512), 16); !errors.Is(err, blkfront.ErrNotSupported) {
		t.Errorf("BLKIF_RSP_EOPNOTSUPP: %v", err)
	}
	if err := d.Flush(); !errors.Is(err, blkfront.ErrNotSupported) || !strings.Contains(err.Error(), "flush") {
		t.Errorf("flush refused: %v", err)
	}
	if err := d.ReadAt(make([]byte, 512), 24); !errors.Is(err, blkfront.ErrIO) || !strings.Contains(err.Error(), "status 7") {
		t.Errorf("unknown status: %v", err)
	}
	// Errors leave the device usable and the grants returned.
	if err := d.WriteAt(pattern(512, 1), 0); err != nil {
		t.Errorf("after errors: %v", err)
	}
}

func TestResponseNeverComes(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{})
	d := b.open()
	b.back.Hold()
	ctx, cancel := context.WithTimeout(b.ctx, 200*time.Millisecond)
	defer cancel()
	err := d.ReadAtContext(ctx, make([]byte, 512), 0)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no response") {
		t.Fatalf("held backend: %v", err)
	}
	// The late response is still consumed and its grants ended.
	b.back.Release()
	if err := d.ReadAt(make([]byte, 512), 1); err != nil {
		t.Fatal(err)
	}
	b.closeClean(d)
}

func TestLostEventFoundByPoll(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{NoNotify: true})
	d := b.open()
	defer b.closeClean(d)
	want := pattern(1024, 2)
	if err := d.WriteAt(want, 4); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1024)
	if err := d.ReadAt(got, 4); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back without events: %v", err)
	}
	if st := d.Stats(); st.Polled != 2 || st.Requests != 2 || st.Responses != 2 {
		t.Errorf("stats %+v, want 2 requests and 2 responses, both found by polling", st)
	}
}

func TestBackendDisappears(t *testing.T) {
	for _, how := range []string{"closing", "removed"} {
		t.Run(how, func(t *testing.T) {
			b := newBed(t, 64<<10, xentest.BlkbackConfig{})
			d := b.open()
			b.back.Hold()
			errc := make(chan error, 4)
			for i := 0; i < 4; i++ {
				go func(i int) { errc <- d.ReadAtContext(b.ctx, make([]byte, 4096), uint64(8*i)) }(i)
			}
			waitFor(t, "requests on the ring", func() bool { return d.InFlight() == 4 })
			var err error
			if how == "closing" {
				err = b.x.Write(b.ctx, b.paths.Backend+"/state", "5")
			} else {
				err = b.x.RemoveVBD(b.ctx, b.paths)
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				// b.ctx is a minute: an error here before it means no hang.
				if err := <-errc; !errors.Is(err, blkfront.ErrGone) {
					t.Errorf("pending request: %v, want ErrGone", err)
				}
			}
			if err := d.WriteAt(make([]byte, 512), 0); !errors.Is(err, blkfront.ErrGone) {
				t.Errorf("later request: %v, want ErrGone", err)
			}
			b.back.Stop()
			// Close still completes and frees what the backend does not map.
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			defer cancel()
			d.Close(ctx)
			if got := b.fe.Ports(); got != b.ports {
				t.Errorf("after Close %d event channels, want %d", got, b.ports)
			}
		})
	}
}

// waitFor polls cond until it holds; the deadline only turns a hang into
// a failure.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRingFull(t *testing.T) {
	b := newBed(t, 1<<20, xentest.BlkbackConfig{})
	d := b.open()
	defer b.closeClean(d)
	b.back.Hold()
	const n = 100
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) { errc <- d.WriteAtContext(b.ctx, pattern(4096, byte(i)), uint64(8*i)) }(i)
	}
	// The ring takes 32 requests; the rest wait for a slot.
	waitFor(t, "a full ring", func() bool { return b.back.Published() == blkfront.RingSize })
	if got := d.InFlight(); got != blkfront.RingSize {
		t.Errorf("%d requests in flight with a full ring, want %d", got, blkfront.RingSize)
	}
	b.back.Release()
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	disk := b.disk.Data()
	for i := 0; i < n; i++ {
		if !bytes.Equal(disk[i*4096:(i+1)*4096], pattern(4096, byte(i))) {
			t.Fatalf("request %d's data not on the disk", i)
		}
	}
}

func TestCloseAndUseAfterClose(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{FlushCache: true})
	d := b.open()
	b.closeClean(d)
	if err := d.ReadAt(make([]byte, 512), 0); !errors.Is(err, blkfront.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if err := d.Flush(); !errors.Is(err, blkfront.ErrClosed) {
		t.Errorf("flush after Close: %v", err)
	}
	if err := d.Close(b.ctx); !errors.Is(err, blkfront.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	// Close left the frontend Initialising, so the backend gets ready for
	// the next frontend.
	waitFor(t, "backend back in InitWait", func() bool {
		s, _ := b.x.Store.Get(b.paths.Backend + "/state")
		return s == fmt.Sprint(int(xenbus.StateInitWait))
	})
}

func TestOpenFailures(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{})
	cfg := b.config()
	cfg.Node = "device/vbd/1"
	if _, err := blkfront.Open(b.ctx, cfg); err == nil || !strings.Contains(err.Error(), "device/vbd/1") {
		t.Errorf("missing node: %v", err)
	}
	if _, err := blkfront.Open(b.ctx, blkfront.Config{}); err == nil {
		t.Error("empty Config accepted")
	}
	// Transactions that conflict are retried.
	b.x.Store.SetFailCommits(2)
	d := b.open()
	b.closeClean(d)
}

func TestBadSectorSizeRefused(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{SectorSize: 1000})
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	_, err := blkfront.Open(ctx, b.config())
	if err == nil || !strings.Contains(err.Error(), "sector-size 1000") {
		t.Fatalf("sector-size 1000: %v", err)
	}
	if got := b.fe.Grants.Free(); got != b.freeGrants {
		t.Errorf("failed Open left %d grants", b.freeGrants-got)
	}
}

func TestByteView(t *testing.T) {
	b := newBed(t, 64<<10, xentest.BlkbackConfig{})
	d := b.open()
	defer b.closeClean(d)
	v := blkfront.Bytes{D: d}
	if n, err := v.WriteAt(pattern(1024, 5), 2048); n != 1024 || err != nil {
		t.Fatalf("WriteAt: %d, %v", n, err)
	}
	got := make([]byte, 2048)
	n, err := v.ReadAt(got, 63<<10)
	if n != 1024 || err == nil {
		t.Errorf("ReadAt across the end: %d, %v; want 1024 and io.EOF", n, err)
	}
	if _, err := v.ReadAt(got[:1024], 2048); err != nil || !bytes.Equal(got[:1024], pattern(1024, 5)) {
		t.Errorf("ReadAt: %v", err)
	}
	if _, err := v.ReadAt(got, 100); !errors.Is(err, blkfront.ErrAlign) {
		t.Errorf("unaligned offset: %v", err)
	}
}

// The manager's store runs on this device as it is.
var _ store.Device = (*blkfront.Device)(nil)

// TestManagerStoreOnBlkfront runs the manager's store on a PV disk: format,
// commit a record, open again from the disk, read it back.
func TestManagerStoreOnBlkfront(t *testing.T) {
	b := newBed(t, 4<<20, xentest.BlkbackConfig{FlushCache: true})
	d := b.open()
	defer b.closeClean(d)
	key := bytes.Repeat([]byte{7}, store.KeySize)
	s, err := store.Format(d, key, 1)
	if err != nil {
		t.Fatal(err)
	}
	id := store.UUID{1, 2, 3}
	if err := s.Put(id, store.Record{Blob: []byte("sealed-key-blob"), Group: 1}); err != nil {
		t.Fatal(err)
	}
	s2, err := store.Open(d, key, store.Options{MinCounter: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s2.Get(id)
	if err != nil || string(r.Blob) != "sealed-key-blob" {
		t.Fatalf("record after reopening: %q, %v", r.Blob, err)
	}
	if !contains(b.disk.Ops(), "flush") {
		t.Error("the store's commits sent no flush")
	}
}
