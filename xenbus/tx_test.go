package xenbus

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

func TestTransactionCommits(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)
	err := c.Transaction(ctx, func(tx *Tx) error {
		if tx.ID() == 0 {
			t.Error("transaction id 0")
		}
		for _, kv := range [][2]string{{"ring-ref", "8"}, {"event-channel", "5"}, {"feature-protocol-v2", "1"}} {
			if err := tx.WriteString(ctx, "device/vtpm/0/"+kv[0], kv[1]); err != nil {
				return err
			}
		}
		// Inside the transaction its own writes are visible, outside not yet.
		if v, err := tx.ReadString(ctx, "device/vtpm/0/ring-ref"); err != nil || v != "8" {
			t.Errorf("read inside tx = %q, %v", v, err)
		}
		if _, err := c.Read(ctx, "device/vtpm/0/ring-ref"); !errors.Is(err, ErrNoEnt) {
			t.Errorf("read outside tx: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot()["/local/domain/3/device/vtpm/0/event-channel"]; got != "5" {
		t.Fatalf("after commit event-channel = %q", got)
	}
}

func TestTransactionRetriesOnEAGAIN(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)
	s.SetFailCommits(2)
	runs := 0
	err := c.Transaction(ctx, func(tx *Tx) error {
		runs++
		n, err := tx.ReadInt(ctx, "/counter")
		if errors.Is(err, ErrNoEnt) {
			n, err = 0, nil
		}
		if err != nil {
			return err
		}
		return tx.WriteString(ctx, "/counter", strconv.FormatInt(n+1, 10))
	})
	if err != nil || runs != 3 {
		t.Fatalf("err = %v after %d runs, want success on the 3rd", err, runs)
	}
	if s.Stats().Commits != 1 || s.Snapshot()["/counter"] != "1" {
		t.Fatalf("%d commits, counter %q", s.Stats().Commits, s.Snapshot()["/counter"])
	}
}

func TestTransactionConflictFromAnotherWriter(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)
	runs := 0
	err := c.Transaction(ctx, func(tx *Tx) error {
		runs++
		if runs == 1 {
			s.write("/other", "changed") // someone else commits meanwhile
		}
		return tx.WriteString(ctx, "/mine", "x")
	})
	if err != nil || runs != 2 {
		t.Fatalf("err = %v, runs = %d", err, runs)
	}
}

func TestTransactionGivesUp(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)
	s.SetFailCommits(1000)
	runs := 0
	err := c.Transaction(ctx, func(tx *Tx) error { runs++; return nil })
	if !errors.Is(err, ErrAgain) || !strings.Contains(err.Error(), "after 10 attempts") || runs != MaxTransactionAttempts {
		t.Fatalf("err = %v after %d runs", err, runs)
	}
}

func TestTransactionAbortsOnError(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)
	boom := errors.New("boom")
	var kept *Tx
	err := c.Transaction(ctx, func(tx *Tx) error {
		kept = tx
		if err := tx.WriteString(ctx, "/discard", "x"); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("err = %v, want the function's error", err)
	}
	if _, err := c.Read(ctx, "/discard"); !errors.Is(err, ErrNoEnt) {
		t.Fatalf("aborted write visible: %v", err)
	}
	if err := kept.WriteString(ctx, "/late", "x"); !errors.Is(err, ErrTxDone) {
		t.Fatalf("Tx used after its function: %v", err)
	}
	// The abort is sent without waiting; a later round trip orders after it.
	if _, err := c.Directory(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	aborts := s.Stats().Aborts
	if aborts != 1 {
		t.Fatalf("%d aborts reached the store", aborts)
	}
}

func TestTransactionStartFailure(t *testing.T) {
	p := newPipe()
	c := NewClient(p)
	defer c.Close()
	ctx := testCtx(t)
	done := make(chan error)
	go func() { done <- c.Transaction(ctx, func(*Tx) error { return nil }) }()
	m := p.next(t)
	if m.Type != xswire.XSTransactionStart || string(m.Payload) != "\x00" || m.TxID != 0 {
		t.Fatalf("start request %v %q", m, m.Payload)
	}
	p.push(reply(m, "0\x00"))
	if err := <-done; !errors.Is(err, ErrProtocol) {
		t.Fatalf("tx id 0 accepted: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Transaction(cctx, func(*Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}
