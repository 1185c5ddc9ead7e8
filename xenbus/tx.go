package xenbus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// MaxTransactionAttempts bounds how often Transaction re-runs its function
// when xenstored reports a conflict (EAGAIN).
const MaxTransactionAttempts = 10

// abortTimeout bounds sending the abort of a failed transaction, which may
// happen after the caller's own context has ended.
const abortTimeout = time.Second

// Tx is an open xenstore transaction. Its node operations see a snapshot
// of the store taken at the start and take effect together at commit.
// A Tx is only valid inside the function given to Client.Transaction.
type Tx struct {
	handle
	id   uint32
	done atomic.Bool
}

// ID is the transaction's tx_id.
func (tx *Tx) ID() uint32 { return tx.id }

// Transaction runs fn inside a transaction and commits it if fn returns
// nil; if fn returns an error the transaction is aborted and the error
// returned. xenstored refuses a commit with EAGAIN when something fn read
// changed meanwhile: then, or when fn itself returns an error matching
// ErrAgain, fn runs again in a fresh transaction, at most
// MaxTransactionAttempts times. fn must therefore have no side effects
// outside the transaction.
func (c *Client) Transaction(ctx context.Context, fn func(tx *Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := c.transactOnce(ctx, fn)
		if err == nil || !errors.Is(err, ErrAgain) {
			return err
		}
		if attempt == MaxTransactionAttempts {
			return fmt.Errorf("xenbus: transaction still conflicting after %d attempts: %w", attempt, err)
		}
		// Give the conflicting writer a moment; growing so that two
		// clients retrying against each other drift apart.
		t := time.NewTimer(time.Duration(attempt) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("xenbus: transaction retry after conflict: %w", ctx.Err())
		}
	}
}

func (c *Client) transactOnce(ctx context.Context, fn func(tx *Tx) error) error {
	p, err := c.request(ctx, xswire.XSTransactionStart, 0, xswire.TransactionStartPayload())
	var id uint32
	if err == nil {
		id, err = xswire.ParseTxID(p)
	}
	if err != nil {
		return fmt.Errorf("xenbus: transaction start: %w", err)
	}
	tx := &Tx{id: id}
	tx.handle = handle{c: c, tx: tx}

	if ferr := fn(tx); ferr != nil {
		tx.done.Store(true)
		// Abort without waiting for the answer: the caller's error is what
		// matters, and xenstored drops the transaction either way.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		_ = c.sendOnly(actx, xswire.XSTransactionEnd, id, xswire.TransactionEndPayload(false))
		return ferr
	}
	tx.done.Store(true)
	p, err = c.request(ctx, xswire.XSTransactionEnd, id, xswire.TransactionEndPayload(true))
	if err == nil {
		err = xswire.ParseOK(p)
	}
	if err != nil {
		var xe *xswire.Error
		if !errors.As(err, &xe) {
			// The commit may never have left (deadline, full ring): abort so
			// the transaction does not hold one of xenstored's per-connection
			// slots. If the commit did go out, xenstored handles it first and
			// answers the abort with ENOENT, which nobody reads.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			defer cancel()
			_ = c.sendOnly(actx, xswire.XSTransactionEnd, id, xswire.TransactionEndPayload(false))
		}
		return fmt.Errorf("xenbus: transaction %d commit: %w", id, err)
	}
	return nil
}
