//go:build tamago

package xen

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/xenvtpm/xenvtpm/board/reg"
)

// Hypercall numbers (xen.h).
const (
	hcMemoryOp       = 12
	hcXenVersion     = 17
	hcConsoleIO      = 18
	hcGrantTableOp   = 20
	hcVCPUOp         = 24
	hcSchedOp        = 29
	hcEventChannelOp = 32
	hcHVMOp          = 34
)

func hypercall(page, nr, a1, a2, a3, a4, a5 uintptr) int64
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
func wrmsr(msr, lo, hi uint32)
func rdtsc() uint64

// RDTSC reads the time-stamp counter.
func RDTSC() uint64 { return rdtsc() }

// DebugPutc writes one byte to port 0xE9, which Xen forwards to its own
// console for HVM/PVH guests (visible in `xl dmesg` with guest_loglvl=all).
// It works before anything else is set up and needs no privilege.
func DebugPutc(c byte) { reg.Out8(0xe9, c) }

// ErrNotXen is returned when CPUID shows no Xen signature.
var ErrNotXen = errors.New("xen: no XenVMMXenVMM CPUID signature: not running under Xen")

// Hypervisor is an initialised connection to Xen: its CPUID leaves and a
// hypercall page.
type Hypervisor struct {
	Base         uint32 // first Xen CPUID leaf
	Major, Minor uint32 // Xen version from CPUID
	page         uintptr
}

// Detect scans the hypervisor CPUID range for Xen's signature (it is not
// always at 0x40000000: with Viridian enabled it moves up in 0x100 steps).
func Detect() (base uint32, err error) {
	for leaf := uint32(0x40000000); leaf < 0x40010000; leaf += 0x100 {
		eax, ebx, ecx, edx := cpuid(leaf, 0)
		if ebx == 0x566e6558 && ecx == 0x65584d4d && edx == 0x4d4d566e && eax-leaf >= 2 {
			return leaf, nil
		}
	}
	return 0, ErrNotXen
}

// Init detects Xen and installs the hypercall page at pagePA, a page-aligned
// guest-physical page of RAM that stays reserved for it.
func Init(pagePA uintptr) (*Hypervisor, error) {
	if pagePA&0xfff != 0 {
		return nil, fmt.Errorf("xen: hypercall page %#x is not page aligned", pagePA)
	}
	base, err := Detect()
	if err != nil {
		return nil, err
	}
	ver, _, _, _ := cpuid(base+1, 0)
	pages, msr, _, _ := cpuid(base+2, 0)
	if pages < 1 {
		return nil, fmt.Errorf("xen: CPUID leaf %#x offers %d hypercall pages", base+2, pages)
	}
	wrmsr(msr, uint32(pagePA), uint32(uint64(pagePA)>>32))
	return &Hypervisor{Base: base, Major: ver >> 16, Minor: ver & 0xffff, page: pagePA}, nil
}

// call issues hypercall nr. Pointer arguments must stay valid (and, for
// stack objects, unmoved) for the call: callers keep them alive across it.
func (h *Hypervisor) call(nr uintptr, a ...uintptr) int64 {
	var v [5]uintptr
	copy(v[:], a)
	return hypercall(h.page, nr, v[0], v[1], v[2], v[3], v[4])
}

func ptr[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }

// HVM parameters (hvm/params.h).
const (
	ParamCallbackIRQ   = 0
	ParamStorePFN      = 1
	ParamStoreEvtchn   = 2
	ParamConsolePFN    = 17
	ParamConsoleEvtchn = 18
)

const domidSelf = 0x7ff0

type hvmParam struct {
	domid uint16
	_     uint16
	index uint32
	value uint64
}

// GetParam reads an HVM parameter of this domain.
func (h *Hypervisor) GetParam(index uint32) (uint64, error) {
	p := hvmParam{domid: domidSelf, index: index}
	rc := h.call(hcHVMOp, 1 /* HVMOP_get_param */, ptr(&p))
	runtime.KeepAlive(&p)
	return p.value, Result(fmt.Sprintf("HVMOP_get_param(%d)", index), rc)
}

// SetParam writes an HVM parameter of this domain.
func (h *Hypervisor) SetParam(index uint32, value uint64) error {
	p := hvmParam{domid: domidSelf, index: index, value: value}
	rc := h.call(hcHVMOp, 0 /* HVMOP_set_param */, ptr(&p))
	runtime.KeepAlive(&p)
	if rc >= 0 {
		return nil // without allocating: the PVH board's idle hook sets one
	}
	return Result(fmt.Sprintf("HVMOP_set_param(%d)", index), rc)
}

// SetCallbackVector has Xen signal pending events by injecting vector
// (HVM_PARAM_CALLBACK_IRQ, type vector): domain-wide, no local APIC, no
// EOI, injected again for as long as evtchn_upcall_pending is set and the
// vCPU has interrupts enabled. There is no going back on a PVH domain:
// Xen ignores a callback of another type, "none" included, for a domain
// without an emulated PIC and IO-APIC.
func (h *Hypervisor) SetCallbackVector(vector uint8) error {
	return h.SetParam(ParamCallbackIRQ, 2<<56|uint64(vector))
}

// AddToPhysmap maps a Xen-owned frame (space: 0 shared_info, 1 grant table)
// at guest frame gpfn (XENMEM_add_to_physmap).
func (h *Hypervisor) AddToPhysmap(space uint32, idx uint64, gpfn uint64) error {
	arg := struct {
		domid uint16
		size  uint16
		space uint32
		idx   uint64
		gpfn  uint64
	}{domid: domidSelf, space: space, idx: idx, gpfn: gpfn}
	rc := h.call(hcMemoryOp, 7, ptr(&arg))
	runtime.KeepAlive(&arg)
	return Result(fmt.Sprintf("XENMEM_add_to_physmap(space %d, idx %d)", space, idx), rc)
}

// Map spaces for AddToPhysmap.
const (
	MapSpaceSharedInfo = 0
	MapSpaceGrantTable = 1
)

// Shutdown reasons (sched.h).
const (
	ShutdownPoweroff = 0
	ShutdownReboot   = 1
	ShutdownCrash    = 3
)

// Shutdown asks Xen to end this domain (SCHEDOP_shutdown); it returns only
// on failure.
func (h *Hypervisor) Shutdown(reason uint32) error {
	arg := reason
	rc := h.call(hcSchedOp, 2, ptr(&arg))
	runtime.KeepAlive(&arg)
	return Result("SCHEDOP_shutdown", rc)
}

// Poll blocks the calling vCPU until one of ports is pending (at once if
// one already is), any of this domain's event channels becomes pending
// when ports is empty, or Xen system time reaches timeout (0: no timeout):
// SCHEDOP_poll. Xen allows at most MaxPollPorts ports.
func (h *Hypervisor) Poll(ports []uint32, timeout int64) error {
	arg := struct {
		ports   uintptr
		nrPorts uint32
		_       uint32
		timeout uint64
	}{nrPorts: uint32(len(ports)), timeout: uint64(timeout)}
	if len(ports) > 0 {
		arg.ports = uintptr(unsafe.Pointer(&ports[0]))
	}
	rc := h.call(hcSchedOp, 3 /* SCHEDOP_poll */, ptr(&arg))
	runtime.KeepAlive(&arg)
	runtime.KeepAlive(ports)
	return Result("SCHEDOP_poll", rc)
}

// MaxPollPorts is Xen's limit on Poll's port list.
const MaxPollPorts = 128

// ConsoleWrite writes to Xen's console (CONSOLEIO_write). Release builds of
// Xen refuse it to unprivileged domains (EPERM); DebugPutc is the fallback.
func (h *Hypervisor) ConsoleWrite(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	rc := h.call(hcConsoleIO, 0, uintptr(len(b)), uintptr(unsafe.Pointer(&b[0])))
	runtime.KeepAlive(b)
	return Result("CONSOLEIO_write", rc)
}

// Version returns major, minor and the extra version string
// (XENVER_version, XENVER_extraversion).
func (h *Hypervisor) Version() (major, minor uint32, extra string, err error) {
	v := h.call(hcXenVersion, 0, 0)
	if v < 0 {
		return 0, 0, "", Result("XENVER_version", v)
	}
	var buf [16]byte
	rc := h.call(hcXenVersion, 1, ptr(&buf))
	runtime.KeepAlive(&buf)
	n := 0
	for n < len(buf) && buf[n] != 0 {
		n++
	}
	return uint32(v >> 16), uint32(v & 0xffff), string(buf[:n]), Result("XENVER_extraversion", rc)
}

// SetSingleshotTimer arms this vCPU's one-shot timer at absolute Xen system
// time ns (VCPUOP_set_singleshot_timer); it fires VIRQ_TIMER. A deadline in
// the past fires at once.
func (h *Hypervisor) SetSingleshotTimer(vcpu uint32, ns int64) error {
	arg := struct {
		timeout uint64
		flags   uint32
		_       uint32
	}{timeout: uint64(ns)}
	rc := h.call(hcVCPUOp, 8 /* VCPUOP_set_singleshot_timer */, uintptr(vcpu), ptr(&arg))
	runtime.KeepAlive(&arg)
	return Result("VCPUOP_set_singleshot_timer", rc)
}

// EventChannelOp issues EVTCHNOP cmd with a pointer to its argument struct.
func (h *Hypervisor) EventChannelOp(cmd uintptr, arg unsafe.Pointer) int64 {
	rc := h.call(hcEventChannelOp, cmd, uintptr(arg))
	runtime.KeepAlive(arg)
	return rc
}

// GrantTableOp issues GNTTABOP cmd over count argument structs at arg.
func (h *Hypervisor) GrantTableOp(cmd uintptr, arg unsafe.Pointer, count uintptr) int64 {
	rc := h.call(hcGrantTableOp, cmd, uintptr(arg), count)
	runtime.KeepAlive(arg)
	return rc
}
