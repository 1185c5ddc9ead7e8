//go:build tamago

package xen

import (
	"fmt"
	"unsafe"

	"github.com/xenvtpm/xenvtpm/evtchn"
)

// EvtchnOps implements evtchn.Ops with EVTCHNOP_* hypercalls.
type EvtchnOps struct{ H *Hypervisor }

func (o EvtchnOps) op(name string, cmd uintptr, arg unsafe.Pointer) error {
	return Result("EVTCHNOP_"+name, o.H.EventChannelOp(cmd, arg))
}

// AllocUnbound is EVTCHNOP_alloc_unbound.
func (o EvtchnOps) AllocUnbound(remote uint16) (evtchn.Port, error) {
	a := struct {
		dom, remote uint16
		port        uint32
	}{dom: domidSelf, remote: remote}
	err := o.op("alloc_unbound", 6, unsafe.Pointer(&a))
	return evtchn.Port(a.port), err
}

// BindInterdomain is EVTCHNOP_bind_interdomain.
func (o EvtchnOps) BindInterdomain(remote uint16, rport evtchn.Port) (evtchn.Port, error) {
	a := struct {
		remote uint16
		_      uint16
		rport  uint32
		lport  uint32
	}{remote: remote, rport: uint32(rport)}
	err := o.op("bind_interdomain", 0, unsafe.Pointer(&a))
	return evtchn.Port(a.lport), err
}

// BindVIRQ is EVTCHNOP_bind_virq.
func (o EvtchnOps) BindVIRQ(virq, vcpu uint32) (evtchn.Port, error) {
	a := struct{ virq, vcpu, port uint32 }{virq: virq, vcpu: vcpu}
	err := o.op(fmt.Sprintf("bind_virq(%d)", virq), 1, unsafe.Pointer(&a))
	return evtchn.Port(a.port), err
}

func (o EvtchnOps) portOp(name string, cmd uintptr, p evtchn.Port) error {
	a := uint32(p)
	return o.op(name, cmd, unsafe.Pointer(&a))
}

// Send is EVTCHNOP_send.
func (o EvtchnOps) Send(p evtchn.Port) error { return o.portOp("send", 4, p) }

// Close is EVTCHNOP_close.
func (o EvtchnOps) Close(p evtchn.Port) error { return o.portOp("close", 3, p) }

// Unmask is EVTCHNOP_unmask; Xen re-raises an event that arrived while the
// port was masked.
func (o EvtchnOps) Unmask(p evtchn.Port) error { return o.portOp("unmask", 9, p) }
