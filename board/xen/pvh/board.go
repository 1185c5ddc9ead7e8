//go:build tamago

package pvh

import (
	"crypto/fips140"
	"errors"
	"fmt"
	"math"
	"runtime/goos"
	"sync/atomic"
	"time"
	"unsafe"
	_ "unsafe"

	"github.com/usbarmory/tamago/amd64"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/drivers/console"
	"github.com/xenvtpm/xenvtpm/evtchn"
)

var (
	// CPU is the boot vCPU.
	CPU = &amd64.CPU{}
	// Hypervisor is the hypercall interface, set up before main runs.
	Hypervisor *xen.Hypervisor
	// Info is the parsed hvm_start_info.
	Info *StartInfo
	// Events delivers event channels; set up before main runs.
	Events *evtchn.Mux

	sharedInfo *shm.Page
	cons       *console.Ring
	consPort   evtchn.Port

	// clockBase maps Xen system time to Go's nanotime, which must start
	// near zero and never go back.
	clockBase   int64
	clockReady  atomic.Bool
	bootCounter int64

	bootErr error

	hypercallPage  [2 << 12]byte
	sharedInfoPage [2 << 12]byte
)

func pageOf(b []byte) uintptr {
	return (uintptr(unsafe.Pointer(&b[0])) + 0xfff) &^ 0xfff
}

//go:linkname printk runtime/goos.Printk
func printk(c byte) {
	if cons != nil {
		cons.WriteByte(c)
		return
	}
	xen.DebugPutc(c)
}

func xenTime() int64 {
	return xen.ReadTimeInfo(sharedInfo, 32).Nanotime(xen.RDTSC())
}

//go:linkname nanotime runtime/goos.Nanotime
func nanotime() int64 {
	if !clockReady.Load() {
		// Before shared_info is mapped the runtime only needs a clock that
		// moves forward.
		bootCounter++
		return bootCounter
	}
	return xenTime() - clockBase
}

// WallClock is the time of day from Xen's wall clock (shared_info's, which
// Xen sets from the host's real-time clock): Go's own wall clock in this
// runtime counts from the domain's start. ok false while Xen has none.
func WallClock() (t time.Time, ok bool) {
	if !clockReady.Load() {
		return time.Time{}, false
	}
	wc, ok := xen.ReadWallClock(sharedInfo)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, wc+xenTime()), true
}

// XenTime converts a Go nanotime value to Xen system time.
func XenTime(ns int64) int64 { return ns + clockBase }

func physRead(pa uint64, n int) ([]byte, error) {
	if pa < 0x1000 || n < 0 || pa+uint64(n) > 0xc0000000 || pa+uint64(n) < pa {
		return nil, fmt.Errorf("address %#x+%d outside RAM", pa, n)
	}
	return shm.At(uintptr(pa), n).Bytes(), nil
}

// halt stops the vCPU for good: used when Xen itself cannot be reached.
func halt(msg string) {
	for _, c := range []byte(msg) {
		xen.DebugPutc(c)
	}
	amd64.Fault()
}

//go:linkname hwinit1 runtime/goos.Hwinit1
func hwinit1() {
	h, err := xen.Init(pageOf(hypercallPage[:]))
	if err != nil {
		halt("pvh: " + err.Error() + "\n")
	}
	Hypervisor = h

	si := pageOf(sharedInfoPage[:])
	if err := h.AddToPhysmap(xen.MapSpaceSharedInfo, 0, uint64(si>>12)); err != nil {
		halt("pvh: mapping shared_info: " + err.Error() + "\n")
	}
	sharedInfo = shm.At(si, 4096)
	clockBase = xenTime() - bootCounter - 1
	clockReady.Store(true)

	goos.Exit = exit
	goos.Idle = idle

	Info, bootErr = ParseStartInfo(startInfoPA, physRead)
	if bootErr == nil {
		bootErr = Info.checkPlacement(uint64(ramStart), uint64(ramSize), uint64(goos.Bloc))
	}

	if err := initConsole(h); err != nil {
		print("pvh: PV console unavailable, logging to Xen's console only: ", err.Error(), "\n")
	}
}

func initConsole(h *xen.Hypervisor) error {
	pfn, err := h.GetParam(xen.ParamConsolePFN)
	if err != nil {
		return err
	}
	port, err := h.GetParam(xen.ParamConsoleEvtchn)
	if err != nil {
		return err
	}
	if pfn == 0 {
		return errors.New("no console page (HVM_PARAM_CONSOLE_PFN is 0)")
	}
	consPort = evtchn.Port(port)
	ops := xen.EvtchnOps{H: h}
	cons = console.New(shm.At(uintptr(pfn<<12), 4096), func() { ops.Send(consPort) })
	return nil
}

func init() {
	CPU.EnableExceptions()

	if reclaim[1] != 0 && fips140.Enabled() {
		// The heap occupies the buffer FIPS mode's entropy source writes.
		panic("pvh: FIPS 140-3 mode is enabled but this image's FIPS scratch buffer was reclaimed for the heap (build/imgtrim)")
	}

	if bootErr != nil {
		panic(bootErr)
	}
	mux, err := evtchn.NewMux(sharedInfo, xen.EvtchnOps{H: Hypervisor})
	if err != nil {
		panic(err)
	}
	Events = mux
	if err := initUpcall(); err != nil {
		panic(err)
	}
	mux.Demux()
}

// upcallVector is the callback vector: Linux's HYPERVISOR_CALLBACK_VECTOR,
// clear of the exceptions (0-31), which are tamago's.
const upcallVector = 0xf3

// svm is true when Xen's hypercall stubs use VMMCALL (AMD), false for
// VMCALL (Intel).
var svm bool

// initUpcall points the callback vector's IDT gate at upcallEntry; idle
// has Xen raise it once the domain has more channels than a poll can name.
func initUpcall() error {
	// The sched_op stub: hypercall 29, 32 bytes a stub, mov eax then the
	// vendor's instruction.
	stub := shm.At(pageOf(hypercallPage[:])+29*32, 32)
	switch op := stub.Bytes()[5:8]; {
	case op[0] == 0x0f && op[1] == 0x01 && op[2] == 0xc1:
		svm = false
	case op[0] == 0x0f && op[1] == 0x01 && op[2] == 0xd9:
		svm = true
	default:
		return fmt.Errorf("pvh: Xen's sched_op hypercall stub has neither VMCALL nor VMMCALL (% x)", op)
	}
	// A 64-bit interrupt gate (Intel SDM vol. 3A, 6.14.1): present, DPL 0,
	// the code segment cpuinit's GDT puts at 0x08.
	h := upcallEntryPC()
	gate := shm.At(sidt()+upcallVector*16, 16)
	gate.Store16(0, uint16(h))
	gate.Store16(2, 0x08)
	gate.Store16(4, 0x8e00)
	gate.Store16(6, uint16(h>>16))
	gate.Store32(8, uint32(h>>32))
	gate.Store32(12, 0)
	return nil
}

func pollIdle(arg uintptr, svm bool) int64
func upcallEntry()
func upcallEntryPC() uintptr
func sidt() uintptr

// upcallPending reports vcpu_info[0].evtchn_upcall_pending.
func upcallPending() bool { return sharedInfo.Load8(0) != 0 }

// idle blocks the vCPU until one of the domain's event channels is
// pending or, if the scheduler has a timer pending, until that time. It
// runs on the scheduler, which has found nothing to run, and delivers
// pending events itself: the channels' readers become runnable and the
// scheduler picks them up on its next round.
//
// While the domain has at most xen.MaxPollPorts channels, it names them
// all to SCHEDOP_poll, which checks them after marking the vCPU blocked,
// so no event can slip in between, and no interrupt is involved.
//
// Beyond that (a manager serving more than ~125 vTPMs) it polls naming no
// port, which any later event of the domain ends. An event set pending
// after the last demux but before the poll would not end it; what does is
// the callback vector, set then for good: pollIdle enables interrupts
// across the hypercall, and with them enabled Xen counts a pending upcall
// as an event to deliver and returns from the poll at once. The vector's
// handler (upcallEntry) only disables interrupts again in the frame it
// returns to. Events are delivered here, on the scheduler, never from an
// interrupt, because waking a goroutine from a handler by editing the
// scheduler's timers, as tamago's CPU.ServiceInterrupts does, was seen to
// halt a domain for good under a hostile frontend's flood of
// notifications. Below the bound the port list is kept because it needs
// no interrupt at all. (The test bed, Xen under QEMU's emulated SVM,
// triple-faults domains now and then as they return from a hypercall,
// with the vector set or not, interrupts enabled or not: see
// mgrdomain/testbed-scale.)
func idle(until int64) {
	if demux() {
		return
	}
	var timeout int64
	if until != 0 && until != math.MaxInt64 {
		if until <= nanotime() {
			return
		}
		timeout = XenTime(until)
	}
	if !vectorSet {
		if n := Events.Ports(pollPorts[:]); n <= len(pollPorts) {
			if err := Hypervisor.Poll(pollPorts[:n], timeout); err != nil {
				return // keep polling rather than sleep forever
			}
			demux()
			return
		}
		if err := Hypervisor.SetCallbackVector(upcallVector); err != nil {
			return // keep polling rather than sleep through an event
		}
		vectorSet = true
	}
	pollArg.timeout = uint64(timeout)
	pollIdle(uintptr(unsafe.Pointer(&pollArg)), svm)
	demux()
}

// pollPorts is idle's port list (the scheduler runs idle one at a time).
var pollPorts [xen.MaxPollPorts]uint32

// vectorSet: Xen raises the callback vector for pending events, and idle
// waits for any event (see idle).
var vectorSet bool

// pollArg is idle's sched_poll once vectorSet: no ports, so any event
// ends the poll; timeout in Xen system time, 0 for none.
var pollArg struct {
	ports   uintptr
	nrPorts uint32
	_       uint32
	timeout uint64
}

// demux delivers pending events, reporting whether there were any.
func demux() bool {
	if Events == nil || !upcallPending() {
		return false
	}
	Events.Demux()
	return true
}

// exit ends the domain: code 0 powers it off, anything else (a panic exits
// with 2) reports a crash, so xl's on_poweroff / on_crash apply.
func exit(code int32) {
	drainConsole()
	reason := uint32(xen.ShutdownPoweroff)
	if code != 0 {
		reason = xen.ShutdownCrash
	}
	if Hypervisor != nil {
		Hypervisor.Shutdown(reason)
	}
	amd64.Fault()
}

// drainConsole waits, for a bounded time, until xenconsoled has read the
// ring, so the last lines (a panic's message and stack) reach the log
// before the domain is destroyed.
func drainConsole() {
	if cons == nil {
		return
	}
	cons.Flush()
	deadline := nanotime() + 2e9
	for !cons.Empty() && nanotime() < deadline {
		cons.Flush()
		for i := 0; i < 100000; i++ {
		}
	}
}
