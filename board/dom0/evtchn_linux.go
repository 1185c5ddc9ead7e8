package dom0

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xenvtpm/xenvtpm/evtchn"
)

// EvtchnDevice is the kernel's event-channel device.
const EvtchnDevice = "/dev/xen/evtchn"

// ioctl numbers of include/uapi/xen/evtchn.h: _IOC(_IOC_NONE, 'E', nr, size).
const (
	ioctlEvtchnBindVIRQ        = 0x00044500 // struct { u32 virq }
	ioctlEvtchnBindInterdomain = 0x00084501 // struct { u32 remote_domain, remote_port }
	ioctlEvtchnBindUnboundPort = 0x00044502 // struct { u32 remote_domain }
	ioctlEvtchnUnbind          = 0x00044503 // struct { u32 port }
	ioctlEvtchnNotify          = 0x00044504 // struct { u32 port }
)

// EvtchnDev is an open /dev/xen/evtchn: its Mux binds ports through the
// device's ioctls, and a reader goroutine hands every event the kernel
// reports to the Mux.
//
// The kernel masks a port when it queues its event for reading; the
// reader unmasks it again (a write of the port number) right after
// delivery. Channel signals coalesce, and every consumer re-reads its
// shared state after a wake-up, so nothing is lost in between.
type EvtchnDev struct {
	f    *os.File
	mux  *evtchn.Mux
	done chan struct{}
}

// OpenEvtchn opens the device and starts its reader.
func OpenEvtchn() (*EvtchnDev, error) {
	f, err := os.OpenFile(EvtchnDevice, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("dom0: %w (is the xen-evtchn module loaded?)", err)
	}
	d := &EvtchnDev{f: f, done: make(chan struct{})}
	d.mux = evtchn.NewDeviceMux(evtchnOps{d})
	go d.read()
	return d, nil
}

// Mux is the event-channel multiplexer fed by this device.
func (d *EvtchnDev) Mux() *evtchn.Mux { return d.mux }

// Close stops the reader and closes the device; the kernel unbinds every
// port still bound through it.
func (d *EvtchnDev) Close() error {
	err := d.f.Close()
	<-d.done
	return err
}

func (d *EvtchnDev) read() {
	defer close(d.done)
	buf := make([]byte, 4*64)
	for {
		n, err := d.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				fmt.Fprintf(os.Stderr, "dom0: reading %s: %v\n", EvtchnDevice, err)
			}
			return
		}
		n -= n % 4
		for i := 0; i < n; i += 4 {
			d.mux.Deliver(evtchn.Port(binary.NativeEndian.Uint32(buf[i:])))
		}
		if _, err := d.f.Write(buf[:n]); err != nil {
			fmt.Fprintf(os.Stderr, "dom0: unmasking event channels: %v\n", err)
		}
	}
}

// ioctl issues one of the device's ioctls; a bind returns the local port.
func (d *EvtchnDev) ioctl(req uintptr, arg unsafe.Pointer) (uintptr, error) {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var r uintptr
	var errno syscall.Errno
	if cerr := rc.Control(func(fd uintptr) {
		r, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	}); cerr != nil {
		return 0, cerr
	}
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// evtchnOps are the event-channel operations through the device.
type evtchnOps struct{ d *EvtchnDev }

// AllocUnbound implements evtchn.Ops (IOCTL_EVTCHN_BIND_UNBOUND_PORT).
func (o evtchnOps) AllocUnbound(remoteDom uint16) (evtchn.Port, error) {
	arg := [1]uint32{uint32(remoteDom)}
	p, err := o.d.ioctl(ioctlEvtchnBindUnboundPort, unsafe.Pointer(&arg))
	return evtchn.Port(p), err
}

// BindInterdomain implements evtchn.Ops (IOCTL_EVTCHN_BIND_INTERDOMAIN).
func (o evtchnOps) BindInterdomain(remoteDom uint16, remotePort evtchn.Port) (evtchn.Port, error) {
	arg := [2]uint32{uint32(remoteDom), uint32(remotePort)}
	p, err := o.d.ioctl(ioctlEvtchnBindInterdomain, unsafe.Pointer(&arg))
	return evtchn.Port(p), err
}

// BindVIRQ implements evtchn.Ops (IOCTL_EVTCHN_BIND_VIRQ); the kernel
// binds it to its own vCPU choice, so vcpu must be 0.
func (o evtchnOps) BindVIRQ(virq, vcpu uint32) (evtchn.Port, error) {
	if vcpu != 0 {
		return 0, fmt.Errorf("dom0: %s binds VIRQs to vCPU 0 only", EvtchnDevice)
	}
	arg := [1]uint32{virq}
	p, err := o.d.ioctl(ioctlEvtchnBindVIRQ, unsafe.Pointer(&arg))
	return evtchn.Port(p), err
}

// Send implements evtchn.Ops (IOCTL_EVTCHN_NOTIFY).
func (o evtchnOps) Send(p evtchn.Port) error {
	arg := [1]uint32{uint32(p)}
	_, err := o.d.ioctl(ioctlEvtchnNotify, unsafe.Pointer(&arg))
	return err
}

// Close implements evtchn.Ops (IOCTL_EVTCHN_UNBIND).
func (o evtchnOps) Close(p evtchn.Port) error {
	arg := [1]uint32{uint32(p)}
	_, err := o.d.ioctl(ioctlEvtchnUnbind, unsafe.Pointer(&arg))
	return err
}

// Unmask implements evtchn.Ops: writing a port number unmasks it.
func (o evtchnOps) Unmask(p evtchn.Port) error {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(p))
	_, err := o.d.f.Write(b[:])
	return err
}
