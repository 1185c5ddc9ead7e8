package dom0

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/grant"
)

// GntAllocDevice is the kernel's grant-allocation device.
const GntAllocDevice = "/dev/xen/gntalloc"

// ioctl numbers of include/uapi/xen/gntalloc.h: _IOC(_IOC_NONE, 'G', nr, size).
const (
	ioctlGntallocAllocGref   = 0x00184705 // struct ioctl_gntalloc_alloc_gref, 24 bytes with one ref
	ioctlGntallocDeallocGref = 0x00104706 // struct ioctl_gntalloc_dealloc_gref, 16 bytes
	gntallocFlagWritable     = 1
)

// allocGref is struct ioctl_gntalloc_alloc_gref with room for one ref.
type allocGref struct {
	Domid uint16
	Flags uint16
	Count uint32
	Index uint64 // out: the offset to mmap
	Ref   uint32 // out: gref_ids[0]
	_     uint32
}

// deallocGref is struct ioctl_gntalloc_dealloc_gref.
type deallocGref struct {
	Index uint64
	Count uint32
	_     uint32
}

// GntAlloc is an open /dev/xen/gntalloc; it implements grant.Sharer. The
// kernel allocates each page and its grant in one step; Unshare unmaps the
// page and gives the grant back, and the kernel ends it (keeping the page)
// once the peer no longer maps it.
type GntAlloc struct {
	f *os.File

	mu     sync.Mutex
	shared map[grant.Ref]gntPage
}

type gntPage struct {
	index uint64
	mem   []byte
}

// OpenGntAlloc opens the device.
func OpenGntAlloc() (*GntAlloc, error) {
	f, err := os.OpenFile(GntAllocDevice, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("dom0: %w (is the xen-gntalloc module loaded?)", err)
	}
	return &GntAlloc{f: f, shared: map[grant.Ref]gntPage{}}, nil
}

func (g *GntAlloc) ioctl(req uintptr, arg unsafe.Pointer) error {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if cerr := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	}); cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// Share implements grant.Sharer: IOCTL_GNTALLOC_ALLOC_GREF for one page,
// then mmap of it. The page comes zeroed from the kernel.
func (g *GntAlloc) Share(domid uint16, readonly bool) (*grant.Page, grant.Ref, error) {
	a := allocGref{Domid: domid, Count: 1}
	if !readonly {
		a.Flags = gntallocFlagWritable
	}
	if err := g.ioctl(ioctlGntallocAllocGref, unsafe.Pointer(&a)); err != nil {
		return nil, 0, fmt.Errorf("dom0: %s: allocating a page for domain %d: %w", GntAllocDevice, domid, err)
	}
	var mem []byte
	rc, err := g.f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			mem, err = unix.Mmap(int(fd), int64(a.Index), grant.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		g.dealloc(a.Index)
		return nil, 0, fmt.Errorf("dom0: %s: mapping the page: %w", GntAllocDevice, err)
	}
	ref := grant.Ref(a.Ref)
	g.mu.Lock()
	g.shared[ref] = gntPage{index: a.Index, mem: mem}
	g.mu.Unlock()
	return &grant.Page{Mem: shm.New(mem)}, ref, nil
}

func (g *GntAlloc) dealloc(index uint64) error {
	d := deallocGref{Index: index, Count: 1}
	return g.ioctl(ioctlGntallocDeallocGref, unsafe.Pointer(&d))
}

// Unshare implements grant.Sharer.
func (g *GntAlloc) Unshare(_ *grant.Page, ref grant.Ref) error {
	g.mu.Lock()
	p, ok := g.shared[ref]
	delete(g.shared, ref)
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("dom0: grant %d was not shared through %s", ref, GntAllocDevice)
	}
	uerr := unix.Munmap(p.mem)
	if err := g.dealloc(p.index); err != nil {
		return fmt.Errorf("dom0: %s: giving back grant %d: %w", GntAllocDevice, ref, err)
	}
	return uerr
}

// Close closes the device; the kernel ends the grants of pages still
// shared once their peers unmap them.
func (g *GntAlloc) Close() error {
	g.mu.Lock()
	for ref, p := range g.shared {
		unix.Munmap(p.mem)
		delete(g.shared, ref)
	}
	g.mu.Unlock()
	return g.f.Close()
}

var _ grant.Sharer = (*GntAlloc)(nil)
