package xenbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// MaxOutstanding bounds the requests a Client has in flight at once; more
// callers wait for a slot. Both xenstored implementations stop reading from
// a domain with too many replies outstanding (a per-domain quota), and
// mini-os allows 32; 16 stays inside that while still overlapping round
// trips, and bounds the memory a burst of callers can pin.
const MaxOutstanding = 16

// Client is a xenstore connection. It is safe for concurrent use; its
// Read, Write and other node operations act outside any transaction.
type Client struct {
	handle // node operations with tx_id 0

	t       Transport
	onError func(error)

	slots    chan struct{} // MaxOutstanding request slots
	sendLock chan struct{} // one Send at a time, but waitable with a ctx

	mu        sync.Mutex
	lastID    uint32
	pending   map[uint32]chan xswire.Message // nil value: caller gave up, drop the reply
	watches   map[string]*Watch              // by token
	lastToken uint64
	err       error         // why the connection ended; set once
	done      chan struct{} // closed when err is set
	readerEnd chan struct{}
	closeOnce sync.Once
}

// Option configures a Client.
type Option func(*Client)

// WithErrorHandler receives protocol errors that belong to no caller: a
// reply whose req_id matches no request, a malformed watch event. They are
// dropped after reporting, and the connection carries on, because the byte
// stream itself is still in step. A domain should pass its console logger;
// without one such errors are discarded.
func WithErrorHandler(f func(error)) Option {
	return func(c *Client) {
		if f != nil {
			c.onError = f
		}
	}
}

// NewClient starts a client over t and the goroutine that reads replies.
// The Client owns t: Close closes it.
func NewClient(t Transport, opts ...Option) *Client {
	c := &Client{
		t:         t,
		onError:   func(error) {},
		slots:     make(chan struct{}, MaxOutstanding),
		sendLock:  make(chan struct{}, 1),
		pending:   make(map[uint32]chan xswire.Message),
		watches:   make(map[string]*Watch),
		done:      make(chan struct{}),
		readerEnd: make(chan struct{}),
	}
	c.handle = handle{c: c}
	for _, o := range opts {
		o(c)
	}
	go c.reader()
	return c
}

// Close ends the connection: pending and later calls fail with ErrClosed
// and every Watch's channel is closed. Only the first call does anything.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.fail(ErrClosed)
		err = c.t.Close()
		<-c.readerEnd
	})
	return err
}

// Err reports why the connection ended, or nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the connection with err (once) and wakes everything waiting.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	ws := c.watches
	c.watches = map[string]*Watch{}
	c.mu.Unlock()
	for _, w := range ws {
		w.stop(err)
	}
}

func (c *Client) reader() {
	defer close(c.readerEnd)
	for {
		m, err := c.t.Recv()
		if err != nil {
			c.fail(fmt.Errorf("xenbus: connection to xenstored lost: %w", err))
			return
		}
		c.dispatch(m)
	}
}

func (c *Client) dispatch(m xswire.Message) {
	if m.Type == xswire.XSWatchEvent {
		path, token, err := xswire.ParseWatchEvent(m.Payload)
		if err != nil {
			c.onError(fmt.Errorf("xenbus: dropped watch event: %w", err))
			return
		}
		c.mu.Lock()
		w := c.watches[token]
		c.mu.Unlock()
		// Events for a token we no longer hold are expected: xenstored may
		// have queued them before it processed our XS_UNWATCH.
		if w != nil {
			w.queue(path)
		}
		return
	}
	c.mu.Lock()
	ch, ok := c.pending[m.ReqID]
	delete(c.pending, m.ReqID)
	c.mu.Unlock()
	switch {
	case !ok:
		c.onError(fmt.Errorf("xenbus: dropped %v reply: req_id %d matches no outstanding request: %w", m.Type, m.ReqID, ErrProtocol))
	case ch != nil:
		ch <- m // buffered; each req_id is answered once
	}
}

// allocID picks a req_id not in flight. 0 is skipped so that no reply can
// be mistaken for xenstored's unsolicited messages. Called with c.mu held.
func (c *Client) allocID() uint32 {
	for {
		c.lastID++
		if _, busy := c.pending[c.lastID]; c.lastID != 0 && !busy {
			return c.lastID
		}
	}
}

// roundTrip sends a request and waits for the reply with the same req_id.
func (c *Client) roundTrip(ctx context.Context, typ xswire.MsgType, tx uint32, payload []byte) (xswire.Message, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return xswire.Message{}, ctx.Err()
	case <-c.done:
		return xswire.Message{}, c.Err()
	}
	defer func() { <-c.slots }()

	ch := make(chan xswire.Message, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return xswire.Message{}, c.err
	}
	id := c.allocID()
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.send(ctx, xswire.Message{Type: typ, ReqID: id, TxID: tx, Payload: payload}); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return xswire.Message{}, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		c.abandon(id)
		return xswire.Message{}, fmt.Errorf("no reply from xenstored to %v (req_id %d): %w", typ, id, ctx.Err())
	case <-c.done:
		return xswire.Message{}, c.Err()
	}
}

// abandon keeps id reserved so its late reply is recognised and dropped
// rather than reported as a stray.
func (c *Client) abandon(id uint32) {
	c.mu.Lock()
	if _, ok := c.pending[id]; ok {
		c.pending[id] = nil
	}
	c.mu.Unlock()
}

// sendOnly sends a request whose reply nobody waits for.
func (c *Client) sendOnly(ctx context.Context, typ xswire.MsgType, tx uint32, payload []byte) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	id := c.allocID()
	c.pending[id] = nil
	c.mu.Unlock()
	err := c.send(ctx, xswire.Message{Type: typ, ReqID: id, TxID: tx, Payload: payload})
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}
	return err
}

func (c *Client) send(ctx context.Context, m xswire.Message) error {
	select {
	case c.sendLock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.Err()
	}
	defer func() { <-c.sendLock }()
	return c.t.Send(ctx, m)
}

// request performs one operation and returns the reply payload, turning an
// XS_ERROR reply into its sentinel error and a reply of the wrong type into
// a protocol error.
func (c *Client) request(ctx context.Context, typ xswire.MsgType, tx uint32, payload []byte) ([]byte, error) {
	m, err := c.roundTrip(ctx, typ, tx, payload)
	if err != nil {
		return nil, err
	}
	switch m.Type {
	case typ:
		return m.Payload, nil
	case xswire.XSError:
		xe, err := xswire.ParseError(m.Payload)
		if err != nil {
			return nil, err
		}
		return nil, xe
	default:
		return nil, fmt.Errorf("%v reply to %v request (req_id %d): %w", m.Type, typ, m.ReqID, ErrProtocol)
	}
}

// GetDomainPath asks xenstored for a domain's home directory,
// normally /local/domain/<domid>.
func (c *Client) GetDomainPath(ctx context.Context, domid uint16) (string, error) {
	p, err := c.request(ctx, xswire.XSGetDomainPath, 0, xswire.DomainPathPayload(domid))
	if err == nil {
		var s string
		if s, err = xswire.ParseString(p); err == nil {
			if err = xswire.ValidatePath(s); err == nil {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("xenbus: get domain path of %d: %w", domid, err)
}

// handle carries the node operations shared by Client (tx_id 0) and Tx.
type handle struct {
	c  *Client
	tx *Tx
}

func (h handle) exchange(ctx context.Context, typ xswire.MsgType, payload []byte, buildErr error) ([]byte, error) {
	if buildErr != nil {
		return nil, buildErr
	}
	var tx uint32
	if h.tx != nil {
		if h.tx.done.Load() {
			return nil, ErrTxDone
		}
		tx = h.tx.id
	}
	return h.c.request(ctx, typ, tx, payload)
}

// wrap names the operation, the path and the transaction in err.
func (h handle) wrap(op, path string, err error) error {
	switch {
	case err == nil:
		return nil
	case h.tx != nil:
		return fmt.Errorf("xenbus: transaction %d: %s %s: %w", h.tx.id, op, path, err)
	default:
		return fmt.Errorf("xenbus: %s %s: %w", op, path, err)
	}
}

// Read returns the value of a node (raw bytes; xenstore values carry no
// terminating NUL).
func (h handle) Read(ctx context.Context, path string) ([]byte, error) {
	payload, err := xswire.PathPayload(path)
	v, err := h.exchange(ctx, xswire.XSRead, payload, err)
	return v, h.wrap("read", path, err)
}

// ReadString is Read for textual values.
func (h handle) ReadString(ctx context.Context, path string) (string, error) {
	v, err := h.Read(ctx, path)
	return string(v), err
}

// Write sets a node's value, creating it and any missing parents.
func (h handle) Write(ctx context.Context, path string, value []byte) error {
	payload, err := xswire.WritePayload(path, value)
	p, err := h.exchange(ctx, xswire.XSWrite, payload, err)
	if err == nil {
		err = xswire.ParseOK(p)
	}
	return h.wrap("write", path, err)
}

// WriteString is Write for textual values.
func (h handle) WriteString(ctx context.Context, path, value string) error {
	return h.Write(ctx, path, []byte(value))
}

// Mkdir creates a node with an empty value; it is not an error if it
// exists.
func (h handle) Mkdir(ctx context.Context, path string) error {
	payload, err := xswire.PathPayload(path)
	p, err := h.exchange(ctx, xswire.XSMkdir, payload, err)
	if err == nil {
		err = xswire.ParseOK(p)
	}
	return h.wrap("mkdir", path, err)
}

// Rm removes a node and everything below it. A missing node is not an
// error, a missing parent is (ErrNoEnt).
func (h handle) Rm(ctx context.Context, path string) error {
	payload, err := xswire.PathPayload(path)
	p, err := h.exchange(ctx, xswire.XSRm, payload, err)
	if err == nil {
		err = xswire.ParseOK(p)
	}
	return h.wrap("rm", path, err)
}

// Directory lists the names of a node's children. A list too long for one
// reply (xenstored answers E2BIG; ~680 domains under backend/vtpm do it)
// is read in parts with XS_DIRECTORY_PART.
func (h handle) Directory(ctx context.Context, path string) ([]string, error) {
	payload, err := xswire.PathPayload(path)
	p, err := h.exchange(ctx, xswire.XSDirectory, payload, err)
	var names []string
	switch {
	case err == nil:
		names, err = xswire.ParseDirectory(p)
	case errors.Is(err, xswire.Err2Big):
		names, err = h.directoryParts(ctx, path)
	}
	return names, h.wrap("directory", path, err)
}

// maxListRestarts bounds how often a listing in parts starts over because
// the node changed between two parts.
const maxListRestarts = 16

// directoryParts reads a node's children list part by part, from offset 0
// until the part marked last, and starts over when the node's generation
// changes between parts (a child came or went), as libxenstore does.
func (h handle) directoryParts(ctx context.Context, path string) ([]string, error) {
	for range maxListRestarts {
		var names []string
		gen, off := "", 0
		for {
			payload, err := xswire.DirectoryPartPayload(path, off)
			p, err := h.exchange(ctx, xswire.XSDirectoryPart, payload, err)
			if err != nil {
				return nil, fmt.Errorf("reading a long directory in parts: %w", err)
			}
			d, err := xswire.ParseDirectoryPart(p)
			if err != nil {
				return nil, err
			}
			if off > 0 && d.Generation != gen {
				break // changed under us: start over
			}
			gen = d.Generation
			names = append(names, d.Names...)
			if d.Last {
				return names, nil
			}
			if d.Len == 0 {
				return nil, fmt.Errorf("directory part at offset %d is empty and not the last: %w", off, ErrProtocol)
			}
			off += d.Len
		}
	}
	return nil, fmt.Errorf("the directory changed while being read in parts, %d times: %w", maxListRestarts, xswire.ErrAgain)
}

// GetPerms returns a node's permissions; the first entry is the owner and
// the access of every domain not listed.
func (h handle) GetPerms(ctx context.Context, path string) ([]Perm, error) {
	payload, err := xswire.PathPayload(path)
	p, err := h.exchange(ctx, xswire.XSGetPerms, payload, err)
	var perms []Perm
	if err == nil {
		perms, err = xswire.ParsePerms(p)
	}
	return perms, h.wrap("get perms", path, err)
}

// SetPerms replaces a node's permissions; see GetPerms for their order.
func (h handle) SetPerms(ctx context.Context, path string, perms []Perm) error {
	payload, err := xswire.SetPermsPayload(path, perms)
	p, err := h.exchange(ctx, xswire.XSSetPerms, payload, err)
	if err == nil {
		err = xswire.ParseOK(p)
	}
	return h.wrap("set perms", path, err)
}

// ReadInt reads a node holding a decimal integer, as xenbus keys such as
// state, ring-ref and event-channel do.
func (h handle) ReadInt(ctx context.Context, path string) (int64, error) {
	v, err := h.Read(ctx, path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("xenbus: %s holds %q, not a decimal integer: %w", path, clipValue(v), ErrBadValue)
	}
	return n, nil
}

// ReadUint reads a node holding an unsigned decimal that fits in bits bits
// (32 for a grant reference or an event channel port).
func (h handle) ReadUint(ctx context.Context, path string, bits int) (uint64, error) {
	v, err := h.Read(ctx, path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(v), 10, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("xenbus: %s holds %q, out of range for %d bits: %w", path, clipValue(v), bits, ErrBadValue)
		}
		return 0, fmt.Errorf("xenbus: %s holds %q, not an unsigned decimal integer: %w", path, clipValue(v), ErrBadValue)
	}
	return n, nil
}

func clipValue(v []byte) []byte {
	if len(v) > 32 {
		return append(v[:32:32], "..."...)
	}
	return v
}
