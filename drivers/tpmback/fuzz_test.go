package tpmback_test

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// maxFrontendOps bounds a fuzz input's steps.
const maxFrontendOps = 24

// FuzzFrontend is a guest writing whatever it likes where a frontend
// writes: its xenstore keys (state, ring-ref, event-channel,
// feature-protocol-v2), in any order and with any values, and its shared
// page, with notifications at any time. Whatever it does, the backend
// keeps serving another frontend and, stopped, leaves no mapping behind.
//
// An input is a list of steps, each an opcode byte and its operand bytes.
func FuzzFrontend(f *testing.F) {
	const (
		opState = iota
		opRingRef
		opEventChannel
		opProtocol
		opRemove
		opPage
		opNotify
		opLinuxSetup
		nOps
	)
	f.Add([]byte{opLinuxSetup, opPage, byte(ring.StateSubmit), 0, 0, 0, 4, 0, opNotify})
	f.Add([]byte{opProtocol, 0, opRingRef, 0, opEventChannel, 0, opState, byte(xenbus.StateConnected), opPage, byte(ring.StateSubmit), 0, 0, 0x10, 0, 0xFF})
	f.Add([]byte{opLinuxSetup, opState, byte(xenbus.StateClosed), opState, byte(xenbus.StateInitialising), opLinuxSetup, opPage, byte(ring.StateCancel), 0, 0, 0, 1, 0})
	f.Add([]byte{opRingRef, 3, opEventChannel, 2, opProtocol, 1, opState, byte(xenbus.StateInitialised), opRemove, 0, opState, byte(xenbus.StateClosing)})
	f.Add([]byte{opLinuxSetup, opPage, 77, 0, 0, 0, 0, 0, opNotify, opRemove, 3})
	f.Fuzz(func(t *testing.T, script []byte) {
		e := newEnv(t, 0)
		good := goodNeighbour(e, 20)
		d, p := e.addDevice(21)
		fr := newRawFront(e, d, p)
		write := func(key, value string) {
			// A refused write (a node the guest may not touch) is the
			// guest's problem, not the test's.
			_ = fr.d.Store.WriteString(fr.ctx, p.Frontend+"/"+key, value)
		}
		next := func() byte {
			if len(script) == 0 {
				return 0
			}
			b := script[0]
			script = script[1:]
			return b
		}
		for n := 0; len(script) > 0 && n < maxFrontendOps; n++ {
			switch next() % nOps {
			case opState:
				v := next()
				if v < 200 {
					write("state", strconv.Itoa(int(v%10)))
				} else {
					write("state", string([]byte{v}))
				}
			case opRingRef:
				write("ring-ref", []string{strconv.Itoa(int(fr.ref)), strconv.Itoa(int(fr.ref) + 1), "0", "ref", "99999999999", "-1"}[next()%6])
			case opEventChannel:
				write("event-channel", []string{strconv.Itoa(int(fr.ch.Port)), "0", "4000", "port", "4294967296"}[next()%5])
			case opProtocol:
				write("feature-protocol-v2", []string{"1", "0", "", "11"}[next()%4])
			case opRemove:
				_ = fr.d.Store.Rm(fr.ctx, p.Frontend+"/"+[]string{"state", "ring-ref", "event-channel", "feature-protocol-v2"}[next()%4])
			case opPage:
				// State byte, then length and nr_extra_pages as the guest
				// pleases, over a TPM 2.0 command.
				st := next()
				length := binary.BigEndian.Uint32([]byte{next(), next(), next(), next()})
				b := fr.page.Mem.Bytes()
				copy(b[8:], tpm2Cmd())
				fr.page.Mem.Store8(7, next())
				fr.page.Mem.Store32(0, length)
				fr.page.Mem.Store8(4, st)
				fr.notify()
			case opNotify:
				fr.notify()
			case opLinuxSetup:
				fr.linuxSetup()
			}
		}
		checkServed(t, good)
	})
}
