package mgrlink

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/internal/xentest"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// FuzzDevicesAndAnswers gives the link what a confused toolstack and a
// broken manager could: vtpm devices with odd names, backends that are
// missing, shared, in any state or named by garbage, beside one device
// whose backend answers each command with the page the input says. Open
// and Send end, by their context at the latest, with a response that fits
// a page or an error, and an Open that finds no manager says ErrNoManager.
//
// The input is up to four device records (name, backend choice, backend
// state) followed by answers (state, length, data length, data).
func FuzzDevicesAndAnswers(f *testing.F) {
	finish := []byte{byte(ring.StateFinish), 0, 4, 4, 'o', 'k', '!', '!'}
	f.Add(uint8(0), []byte{}, finish)
	f.Add(uint8(1), []byte{7, 0, byte(xenbus.StateConnected)}, finish)
	f.Add(uint8(2), []byte{9, 1, 0, 3, 2, byte(xenbus.StateClosed)}, finish)
	f.Add(uint8(3), []byte{1, 3, byte(xenbus.StateInitWait), 4, 0, byte(xenbus.StateClosing)}, []byte{byte(ring.StateIdle), 0, 0, 0})
	f.Add(uint8(1), []byte{2, 0, 4}, []byte{byte(ring.StateFinish), 0x0F, 0xFF, 0})
	f.Fuzz(func(t *testing.T, nDevices uint8, devices, script []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		x := xentest.New()
		mgr := x.AddDomain(t, 1, 1)
		v := x.AddDomain(t, 5, 16)
		real, err := x.AddVTPM(ctx, 1, 5, 0, uuid)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"1", "2", "3", "7", "x", "-1", "99999999999", "0010", "4294967297", "12"}
		for i := 0; i < int(nDevices%5) && len(devices) >= 3; i++ {
			name := names[int(devices[0])%len(names)]
			node := "/local/domain/5/device/vtpm/" + name
			be := "/local/domain/1/backend/vtpm/5/" + name
			switch devices[1] % 4 {
			case 1:
				be = "/local/domain/9/backend/vtpm/5/0" // no such domain
			case 2:
				be = real.Backend // two devices, one backend
			case 3:
				be = "not/a path"
			}
			x.Write(ctx, node+"/backend", be)
			x.Write(ctx, node+"/backend-id", []string{"1", "9", "x"}[int(devices[2])%3])
			x.Write(ctx, node+"/state", "1")
			if be != real.Backend {
				x.Write(ctx, be+"/state", strconv.Itoa(int(devices[2]%9)))
				x.Write(ctx, be+"/feature-protocol-v2", "1")
			}
			devices = devices[3:]
		}
		// The manager: whatever the input says, one page per command,
		// until its answers run out; then it is gone.
		go func() {
			r, err := mgr.AcceptRaw(ctx, real, 5, "1", xenbus.StateConnected)
			if err != nil {
				return
			}
			defer r.Close()
			// A page left in a state other than IDLE or FINISH keeps the
			// link waiting: the next answer follows without a command.
			waiting := false
			for len(script) >= 4 {
				if !waiting && r.Wait(ctx) != nil {
					return
				}
				n := min(int(script[3]), len(script)-4)
				r.Answer(uint32(script[1])<<8|uint32(script[2]), script[0], 0, script[4:4+n])
				waiting = ring.State(script[0]) != ring.StateIdle && ring.State(script[0]) != ring.StateFinish
				script = script[4+n:]
			}
			if !waiting {
				r.Wait(ctx)
			}
			x.Write(ctx, real.Backend+"/state", strconv.Itoa(int(xenbus.StateClosed)))
		}()
		l, err := Open(ctx, Config{Store: v.Store, Pages: v.Sharer(), Events: v.Events, OpenTimeout: 100 * time.Millisecond})
		if err != nil {
			if !errors.Is(err, ErrNoManager) {
				t.Fatalf("Open failed without ErrNoManager: %v", err)
			}
			return
		}
		for range 3 {
			// A device whose backend says Connected and never answers
			// is a manager that is slow: Send waits for its context.
			sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
			rsp, err := l.Send(sctx, []byte("manager command"))
			scancel()
			if err == nil && len(rsp) > ring.MaxData {
				t.Fatalf("%d-byte response", len(rsp))
			}
		}
	})
}
