package xenbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// MaxQueuedEvents bounds the distinct event paths a Watch holds for a slow
// consumer. See Watch for what happens beyond it.
const MaxQueuedEvents = 64

// Watch delivers the paths xenstored reports for one XS_WATCH.
//
// xenstored fires every watch once as soon as it is set up (with the watched
// path itself), and may fire spuriously, so a consumer treats an event as
// "look again" and re-reads what it cares about. That licenses coalescing:
// the reader goroutine never blocks on a consumer; it queues each path at
// most once until the consumer takes it, and when more than MaxQueuedEvents
// distinct paths are waiting it replaces them all with the watched path,
// meaning "something under here changed". Nothing is silently lost: every
// change leaves at least one queued event that covers it.
type Watch struct {
	c     *Client
	path  string
	token string
	ch    chan string

	mu      sync.Mutex
	queued  []string
	inQueue map[string]bool
	err     error
	kick    chan struct{} // buffered 1: something was queued
	stopped chan struct{} // closed by stop
}

// Watch registers a watch on path (a node path, relative or absolute, or
// IntroduceDomain/ReleaseDomain); it covers the node and everything below
// it. The first event, fired by xenstored at setup, is delivered like any
// other.
func (c *Client) Watch(ctx context.Context, path string) (*Watch, error) {
	c.mu.Lock()
	c.lastToken++
	token := "xvt" + strconv.FormatUint(c.lastToken, 16)
	c.mu.Unlock()
	payload, err := xswire.WatchPayload(path, token)
	if err != nil {
		return nil, fmt.Errorf("xenbus: watch %s: %w", path, err)
	}
	w := &Watch{
		c: c, path: path, token: token,
		ch:      make(chan string),
		inQueue: make(map[string]bool),
		kick:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	// Registered before the request goes out, so no event can arrive
	// before its Watch exists.
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("xenbus: watch %s: %w", path, c.err)
	}
	c.watches[token] = w
	c.mu.Unlock()
	go w.pump()

	p, err := c.request(ctx, xswire.XSWatch, 0, payload)
	if err == nil {
		err = xswire.ParseOK(p)
	}
	if err != nil {
		c.mu.Lock()
		delete(c.watches, token)
		c.mu.Unlock()
		var xe *xswire.Error
		if !errors.As(err, &xe) {
			// The watch may have been set even though we never saw the
			// acknowledgement; do not leave it firing into the void.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			_ = c.sendOnly(uctx, xswire.XSUnwatch, 0, payload)
			cancel()
		}
		err = fmt.Errorf("xenbus: watch %s: %w", path, err)
		w.stop(err)
		return nil, err
	}
	return w, nil
}

// Events delivers event paths. It is closed when the watch ends (Unwatch,
// Client.Close or a lost connection); Err then says why.
func (w *Watch) Events() <-chan string { return w.ch }

// Path is the watched path as given to Client.Watch.
func (w *Watch) Path() string { return w.path }

// Err is nil while the watch is active, then the reason it ended.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Unwatch removes the watch from xenstored and closes Events. Events
// xenstored had already queued are dropped. Calling it again is a no-op.
func (w *Watch) Unwatch(ctx context.Context) error {
	c := w.c
	c.mu.Lock()
	mine := c.watches[w.token] == w
	delete(c.watches, w.token)
	c.mu.Unlock()
	if !mine {
		return nil
	}
	w.stop(ErrUnwatched)
	payload, err := xswire.WatchPayload(w.path, w.token)
	if err == nil {
		var p []byte
		if p, err = c.request(ctx, xswire.XSUnwatch, 0, payload); err == nil {
			err = xswire.ParseOK(p)
		}
	}
	if err != nil {
		return fmt.Errorf("xenbus: unwatch %s: %w", w.path, err)
	}
	return nil
}

// queue is called by the reader goroutine and never blocks.
func (w *Watch) queue(path string) {
	w.mu.Lock()
	if w.err != nil || w.inQueue[path] {
		w.mu.Unlock()
		return
	}
	if len(w.queued) >= MaxQueuedEvents {
		clear(w.inQueue)
		w.queued = append(w.queued[:0], w.path)
		w.inQueue[w.path] = true
	} else {
		w.queued = append(w.queued, path)
		w.inQueue[path] = true
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watch) next() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queued) == 0 {
		return "", false
	}
	p := w.queued[0]
	w.queued = w.queued[1:]
	delete(w.inQueue, p)
	return p, true
}

// pump hands queued paths to the consumer, so that only it, never the
// reader goroutine, waits for a slow consumer.
func (w *Watch) pump() {
	defer close(w.ch)
	for {
		p, ok := w.next()
		if !ok {
			select {
			case <-w.kick:
				continue
			case <-w.stopped:
				return
			}
		}
		select {
		case w.ch <- p:
		case <-w.stopped:
			return
		}
	}
}

func (w *Watch) stop(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.err = err
	w.queued = nil
	close(w.stopped)
}
