package tpmfront_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// answer is one page a fuzzed backend writes: state, nr_extra_pages,
// length and data, as they come.
type answer struct {
	state, nrExtra uint8
	length         uint32
	data           []byte
}

// parseAnswers reads records of state, nr_extra_pages, 16-bit length,
// data length and data.
func parseAnswers(b []byte) []answer {
	var as []answer
	for len(b) >= 5 && len(as) < 16 {
		a := answer{state: b[0], nrExtra: b[1], length: uint32(binary.BigEndian.Uint16(b[2:]))}
		n := min(int(b[4]), len(b)-5)
		a.data, b = b[5:5+n], b[5+n:]
		as = append(as, a)
	}
	return as
}

func terminal(s uint8) bool {
	return ring.State(s) == ring.StateIdle || ring.State(s) == ring.StateFinish
}

// FuzzBackendAnswers is a backend that answers the handshake and each
// command as the input says: any feature-protocol-v2 value and state, any
// page state, length and nr_extra_pages. Open and Send return (a
// response, or an error) without waiting for their context, a response
// fits a page and is the bytes the backend put where the page header
// says, and Close lets go.
func FuzzBackendAnswers(f *testing.F) {
	ok := []byte{byte(ring.StateFinish), 0, 0, 3, 3, 'r', 's', 'p'}
	f.Add(uint8(0), uint8(1), ok)
	f.Add(uint8(0), uint8(0), append(append([]byte{byte(ring.StateSubmit), 0, 0, 0, 0}, ok...), byte(ring.StateIdle), 0, 0, 0, 0))
	f.Add(uint8(0), uint8(1), []byte{byte(ring.StateFinish), 255, 0x0F, 0xF0, 4, 1, 2, 3, 4})
	f.Add(uint8(0), uint8(1), []byte{byte(ring.StateFinish), 0, 0xFF, 0xFF, 0})
	f.Add(uint8(1), uint8(1), ok)
	f.Add(uint8(0), uint8(2), ok)
	f.Add(uint8(0), uint8(1), []byte{9, 0, 0, 1, 1, 0})
	f.Fuzz(func(t *testing.T, feature, state uint8, script []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		x := xentest.New()
		be := x.AddDomain(t, 1, 1)
		fe := x.AddDomain(t, 5, 16)
		p, err := x.AddVTPM(ctx, 1, 5, 0, "00000000-0000-4000-8000-000000000001")
		if err != nil {
			t.Fatal(err)
		}
		answers := parseAnswers(script)
		beState := []xenbus.State{xenbus.StateInitialised, xenbus.StateConnected, xenbus.StateClosing, xenbus.StateClosed}[state%4]
		backendDone := make(chan *xentest.RawBackend, 1)
		accepted := make(chan *xentest.RawBackend, 1)
		go func() {
			r, err := be.AcceptRaw(ctx, p, 5, []string{"1", "0", "", "2"}[feature%4], beState)
			if err != nil {
				backendDone <- nil
				return
			}
			accepted <- r
			defer func() { backendDone <- r }()
			// Out of answers, the backend goes away when the next command
			// comes, or at once if the frontend still waits for one.
			waiting := false
			for len(answers) > 0 {
				if r.Wait(ctx) != nil {
					return
				}
				waiting = true
				for len(answers) > 0 && waiting {
					a := answers[0]
					answers = answers[1:]
					r.Answer(a.length, a.state, a.nrExtra, a.data)
					waiting = !terminal(a.state)
				}
			}
			if !waiting {
				r.Wait(ctx)
			}
			be.Store.WriteString(ctx, p.Backend+"/state", strconv.Itoa(int(xenbus.StateClosed)))
		}()

		fr, err := tpmfront.Open(ctx, tpmfront.Config{Store: fe.Store, Pages: fe.Sharer(), Events: fe.Events, Node: "device/vtpm/0"})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Open waited for its deadline: %v", err)
			}
			cancel()
			if r := <-backendDone; r != nil {
				r.Close()
			}
			return
		}
		if beState != xenbus.StateInitialised && beState != xenbus.StateConnected || feature%4 != 0 {
			t.Fatalf("Open accepted a backend in state %v with feature-protocol-v2 %q", beState, []string{"1", "0", "", "2"}[feature%4])
		}
		for range 4 {
			rsp, err := fr.Send(ctx, 0, []byte("command"))
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send waited for its deadline: %v", err)
			}
			if err != nil {
				if errors.Is(err, tpmfront.ErrGone) {
					break
				}
				continue
			}
			if len(rsp) > ring.MaxData {
				t.Fatalf("%d-byte response", len(rsp))
			}
			// The backend now waits for the next command: its page holds
			// the answer Send read.
			page := (<-accepted).Page
			accepted <- &xentest.RawBackend{Page: page}
			off := ring.HeaderSize + 4*int(page.Load8(7))
			if n := page.Load32(0); int(n) != len(rsp) || off+len(rsp) > ring.PageSize || !bytes.Equal(rsp, page.Bytes()[off:off+len(rsp)]) {
				t.Fatalf("response % x is not the %d bytes at offset %d", rsp, n, off)
			}
		}
		be.Store.WriteString(ctx, p.Backend+"/state", strconv.Itoa(int(xenbus.StateClosed)))
		if err := fr.Close(ctx); errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close waited for its deadline: %v", err)
		}
		cancel()
		if r := <-backendDone; r != nil {
			r.Close()
		}
		if n := be.Mapper.Live(); n != 0 {
			t.Fatalf("%d mappings left", n)
		}
	})
}
