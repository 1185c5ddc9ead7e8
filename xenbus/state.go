package xenbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// State is enum xenbus_state, the value of a split device's "state" key.
type State int

const (
	StateUnknown       State = 0
	StateInitialising  State = 1
	StateInitWait      State = 2 // backend: waiting for frontend details
	StateInitialised   State = 3 // frontend: details written
	StateConnected     State = 4
	StateClosing       State = 5
	StateClosed        State = 6
	StateReconfiguring State = 7
	StateReconfigured  State = 8
)

var stateNames = [...]string{"Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing", "Closed", "Reconfiguring", "Reconfigured"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ReadState reads the state key under a device directory (frontend or
// backend). A missing key reads as StateUnknown, as in Linux's
// xenbus_read_driver_state, so a vanished device looks unknown rather than
// failing; a value that is not a state is an error.
func (h handle) ReadState(ctx context.Context, dir string) (State, error) {
	key := dir + "/state"
	n, err := h.ReadInt(ctx, key)
	if errors.Is(err, ErrNoEnt) {
		return StateUnknown, nil
	}
	if err != nil {
		return 0, err
	}
	if n < int64(StateUnknown) || n > int64(StateReconfigured) {
		return 0, fmt.Errorf("xenbus: %s holds %d, not a xenbus state (0-8): %w", key, n, ErrBadValue)
	}
	return State(n), nil
}

// SwitchState sets the state key under the device directory dir. It does
// so in a transaction that first checks the key exists, so that a device
// directory the toolstack has already removed is not recreated by a late
// state change (the reason Linux's xenbus_switch_state does the same); that
// case returns an error matching ErrNoEnt. Writing the current state again
// is skipped.
func (c *Client) SwitchState(ctx context.Context, dir string, s State) error {
	if s < StateUnknown || s > StateReconfigured {
		return fmt.Errorf("xenbus: switch %s to invalid state %d", dir, int(s))
	}
	err := c.Transaction(ctx, func(tx *Tx) error {
		cur, err := tx.ReadInt(ctx, dir+"/state")
		if err != nil && !errors.Is(err, ErrBadValue) {
			return err
		}
		if err == nil && cur == int64(s) {
			return nil
		}
		return tx.WriteString(ctx, dir+"/state", strconv.Itoa(int(s)))
	})
	if err != nil {
		return fmt.Errorf("xenbus: switch %s to %v: %w", dir, s, err)
	}
	return nil
}

// WaitForState waits until the state key under dir holds one of states and
// returns it. It watches the key, so it wakes on every change, and it ends
// with ctx. A value that is not a state ends the wait with an error rather
// than being taken for one.
func (c *Client) WaitForState(ctx context.Context, dir string, states ...State) (State, error) {
	if len(states) == 0 {
		return 0, fmt.Errorf("xenbus: wait for state of %s: no states given", dir)
	}
	w, err := c.Watch(ctx, dir+"/state")
	if err != nil {
		return 0, err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		_ = w.Unwatch(uctx)
	}()
	for {
		// The watch fires once at setup, so the first read happens
		// without waiting for a change.
		select {
		case _, ok := <-w.Events():
			if !ok {
				return 0, fmt.Errorf("xenbus: wait for state of %s: %w", dir, w.Err())
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("xenbus: wait for %s to reach %v: %w", dir, states, ctx.Err())
		}
		s, err := c.ReadState(ctx, dir)
		if err != nil {
			return 0, err
		}
		if slices.Contains(states, s) {
			return s, nil
		}
	}
}
