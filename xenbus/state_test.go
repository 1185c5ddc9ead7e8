package xenbus

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStateNames(t *testing.T) {
	want := []string{"Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing", "Closed", "Reconfiguring", "Reconfigured"}
	for i, w := range want {
		if got := State(i).String(); got != w {
			t.Errorf("State(%d) = %q, want %q", i, got, w)
		}
	}
	if got := State(9).String(); got != "State(9)" {
		t.Errorf("State(9) = %q", got)
	}
}

func TestSwitchAndReadState(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)
	dev := "/local/domain/0/backend/vtpm/3/0"
	if err := c.SwitchState(ctx, dev, StateInitWait); !errors.Is(err, ErrNoEnt) {
		t.Fatalf("switching a device without a state key: %v", err)
	}
	if _, ok := s.Snapshot()[dev]; ok {
		t.Fatal("SwitchState recreated a removed device directory")
	}
	if err := c.WriteString(ctx, dev+"/state", "1"); err != nil {
		t.Fatal(err)
	}
	if err := c.SwitchState(ctx, dev, StateInitWait); err != nil {
		t.Fatal(err)
	}
	if st, err := c.ReadState(ctx, dev); err != nil || st != StateInitWait {
		t.Fatalf("ReadState = %v, %v", st, err)
	}
	if err := c.SwitchState(ctx, dev, State(12)); err == nil {
		t.Fatal("invalid state written")
	}
	if st, err := c.ReadState(ctx, "/nowhere"); err != nil || st != StateUnknown {
		t.Fatalf("missing state = %v, %v", st, err)
	}
	c.WriteString(ctx, dev+"/state", "9")
	if _, err := c.ReadState(ctx, dev); !errors.Is(err, ErrBadValue) {
		t.Fatalf("state 9: %v", err)
	}
	// A junk state is overwritten by a switch.
	if err := c.SwitchState(ctx, dev, StateClosed); err != nil {
		t.Fatal(err)
	}
}

func TestWaitForState(t *testing.T) {
	c, _, _ := storeClient(t)
	ctx := testCtx(t)
	fe := "/local/domain/5/device/vtpm/0"
	c.WriteString(ctx, fe+"/state", "1")

	got := make(chan State)
	errc := make(chan error, 1)
	go func() {
		st, err := c.WaitForState(ctx, fe, StateInitialised, StateConnected)
		errc <- err
		got <- st
	}()
	// Intermediate states do not end the wait.
	for _, st := range []State{StateInitialising, StateClosing, StateInitialised} {
		if err := c.SwitchState(ctx, fe, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st := <-got; st != StateInitialised {
		t.Fatalf("WaitForState = %v", st)
	}

	// Already there: the setup event answers at once.
	if st, err := c.WaitForState(ctx, fe, StateInitialised); err != nil || st != StateInitialised {
		t.Fatalf("immediate WaitForState = %v, %v", st, err)
	}

	c.WriteString(ctx, fe+"/state", "junk")
	if _, err := c.WaitForState(ctx, fe, StateConnected); !errors.Is(err, ErrBadValue) {
		t.Fatalf("junk state: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	c.WriteString(ctx, fe+"/state", "1")
	if _, err := c.WaitForState(short, fe, StateConnected); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("never reached: %v", err)
	}
	if _, err := c.WaitForState(ctx, fe); err == nil {
		t.Fatal("no states accepted")
	}
}
