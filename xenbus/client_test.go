package xenbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

func TestNodeOperations(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)

	if err := c.WriteString(ctx, "data/key", "hello"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadString(ctx, "/local/domain/3/data/key"); err != nil || got != "hello" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if err := c.Write(ctx, "/e", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Read(ctx, "/e"); err != nil || len(got) != 0 {
		t.Fatalf("empty value: %q, %v", got, err)
	}
	bin := []byte{0, 1, 2, 0, 255}
	if err := c.Write(ctx, "/bin", bin); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Read(ctx, "/bin"); err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("binary value: % x, %v", got, err)
	}
	if err := c.Mkdir(ctx, "data/dir"); err != nil {
		t.Fatal(err)
	}
	names, err := c.Directory(ctx, "data")
	if err != nil || strings.Join(names, ",") != "dir,key" {
		t.Fatalf("Directory = %q, %v", names, err)
	}
	perms := []Perm{{Access: AccessNone, Domid: 3}, {Access: AccessRead, Domid: 0}}
	if err := c.SetPerms(ctx, "data/key", perms); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetPerms(ctx, "data/key")
	if err != nil || fmt.Sprint(got) != fmt.Sprint(perms) {
		t.Fatalf("GetPerms = %v, %v", got, err)
	}
	if err := c.Rm(ctx, "data"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Snapshot()["/local/domain/3/data/key"]; ok {
		t.Fatal("rm left a child behind")
	}
	_, err = c.Read(ctx, "data/key")
	if !errors.Is(err, ErrNoEnt) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "read data/key") {
		t.Fatalf("reading a removed node: %v", err)
	}
	if p, err := c.GetDomainPath(ctx, 7); err != nil || p != "/local/domain/7" {
		t.Fatalf("GetDomainPath = %q, %v", p, err)
	}
}

func TestBadRequestsNeverLeave(t *testing.T) {
	p := newPipe()
	c := NewClient(p)
	defer c.Close()
	ctx := testCtx(t)
	if err := c.Write(ctx, "/big", make([]byte, xswire.PayloadMax)); !errors.Is(err, xswire.ErrPayloadTooLarge) {
		t.Fatalf("oversized write: %v", err)
	}
	if _, err := c.Read(ctx, "/a//b"); !errors.Is(err, xswire.ErrInvalidPath) {
		t.Fatalf("bad path: %v", err)
	}
	if _, err := c.Watch(ctx, "@bogus"); !errors.Is(err, xswire.ErrInvalidPath) {
		t.Fatalf("bad watch path: %v", err)
	}
	select {
	case m := <-p.toServer:
		t.Fatalf("invalid request reached the transport: %v", m)
	default:
	}
}

func TestOutOfOrderReplies(t *testing.T) {
	p := newPipe()
	c := NewClient(p)
	defer c.Close()
	ctx := testCtx(t)

	const n = 5
	var wg sync.WaitGroup
	results := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = c.ReadString(ctx, fmt.Sprintf("/k%d", i)) })
	}
	reqs := make([]xswire.Message, n)
	for i := range n {
		reqs[i] = p.next(t)
	}
	for i := n - 1; i >= 0; i-- {
		path := strings.TrimSuffix(string(reqs[i].Payload), "\x00")
		p.push(reply(reqs[i], "value of "+path))
	}
	wg.Wait()
	for i := range n {
		if want := fmt.Sprintf("value of /k%d", i); errs[i] != nil || results[i] != want {
			t.Errorf("caller %d got %q, %v; want %q", i, results[i], errs[i], want)
		}
	}
	ids := map[uint32]bool{}
	for _, r := range reqs {
		if r.ReqID == 0 || ids[r.ReqID] {
			t.Fatalf("req_id %d reused or zero", r.ReqID)
		}
		ids[r.ReqID] = true
	}
}

func TestMissingReplyEndsAtDeadline(t *testing.T) {
	log := newErrorLog()
	p := newPipe()
	c := NewClient(p, WithErrorHandler(log.add))
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Read(ctx, "/never")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "XS_READ") {
		t.Fatalf("err = %v, want deadline error naming the request", err)
	}
	late := p.next(t)
	p.push(reply(late, "too late"))

	// The late reply is dropped quietly and the client still works.
	ctx = testCtx(t)
	done := make(chan error)
	go func() {
		v, err := c.ReadString(ctx, "/after")
		if err == nil && v != "ok" {
			err = fmt.Errorf("got %q", v)
		}
		done <- err
	}()
	p.push(reply(p.next(t), "ok"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := log.count(); n != 0 {
		t.Fatalf("late reply reported as %d protocol errors", n)
	}
}

func TestStrayAndMalformedMessages(t *testing.T) {
	log := newErrorLog()
	p := newPipe()
	c := NewClient(p, WithErrorHandler(log.add))
	defer c.Close()
	ctx := testCtx(t)

	p.push(xswire.Message{Type: xswire.XSRead, ReqID: 999, Payload: []byte("x")})
	if err := log.wait(t); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "req_id 999") {
		t.Fatalf("stray reply: %v", err)
	}
	p.push(xswire.Message{Type: xswire.XSWatchEvent, Payload: []byte("/a\x00tok")})
	if err := log.wait(t); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "watch event") {
		t.Fatalf("malformed event: %v", err)
	}

	// A reply of the wrong type goes to its caller as a protocol error.
	done := make(chan error)
	go func() { _, err := c.Read(ctx, "/x"); done <- err }()
	req := p.next(t)
	p.push(xswire.Message{Type: xswire.XSWrite, ReqID: req.ReqID, Payload: []byte("OK\x00")})
	if err := <-done; !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "XS_WRITE reply to XS_READ") {
		t.Fatalf("wrong reply type: %v", err)
	}
	// An acknowledgement that is not OK, and an undecodable error.
	go func() { done <- c.Write(ctx, "/x", []byte("v")) }()
	p.push(reply(p.next(t), "KO\x00"))
	if err := <-done; !errors.Is(err, ErrProtocol) {
		t.Fatalf("bad ack: %v", err)
	}
	go func() { _, err := c.Read(ctx, "/x"); done <- err }()
	req = p.next(t)
	p.push(xswire.Message{Type: xswire.XSError, ReqID: req.ReqID, Payload: []byte("oops")})
	if err := <-done; !errors.Is(err, ErrProtocol) {
		t.Fatalf("bad error payload: %v", err)
	}
	if c.Err() != nil {
		t.Fatalf("connection ended by a recoverable protocol error: %v", c.Err())
	}
}

func TestTransportFailureFailsEveryone(t *testing.T) {
	p := newPipe()
	c := NewClient(p)
	ctx := testCtx(t)
	s := newFakeStore(1)
	go func() { // answer only the watch setup
		m := p.next(t)
		for _, r := range s.handle(m) {
			p.push(r)
		}
	}()
	w, err := c.Watch(ctx, "/w")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := c.Read(ctx, "/x"); done <- err }()
	p.next(t)
	p.recvErr <- fmt.Errorf("bad header: %w", ErrProtocol)
	if err := <-done; !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "connection to xenstored lost") {
		t.Fatalf("pending call: %v", err)
	}
	for range w.Events() { // drains the setup event, then sees the close
	}
	if !errors.Is(w.Err(), ErrProtocol) {
		t.Fatalf("watch ended with %v", w.Err())
	}
	if _, err := c.Read(ctx, "/y"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("later call: %v", err)
	}
	c.Close()
}

func TestCloseFailsPendingCalls(t *testing.T) {
	p := newPipe()
	c := NewClient(p)
	done := make(chan error)
	go func() { _, err := c.Read(context.Background(), "/x"); done <- err }()
	p.next(t)
	c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending call after Close: %v", err)
	}
	if err := c.Write(context.Background(), "/x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	if _, err := c.Watch(context.Background(), "/x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("watch after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestWatch(t *testing.T) {
	c, s, p := storeClient(t)
	ctx := testCtx(t)
	w, err := c.Watch(ctx, "/local/domain/3/device")
	if err != nil {
		t.Fatal(err)
	}
	if got := recvEvent(t, w); got != "/local/domain/3/device" {
		t.Fatalf("setup event = %q", got)
	}
	for _, ev := range s.write("/local/domain/3/device/vtpm/0/state", "2") {
		p.push(ev)
	}
	if got := recvEvent(t, w); got != "/local/domain/3/device/vtpm/0/state" {
		t.Fatalf("event = %q", got)
	}
	// An event for a token nobody holds is ignored.
	p.push(event("/x", "nosuch"))

	rel, err := c.Watch(ctx, "data")
	if err != nil {
		t.Fatal(err)
	}
	if got := recvEvent(t, rel); got != "data" {
		t.Fatalf("relative setup event = %q", got)
	}
	if err := c.WriteString(ctx, "data/k", "v"); err != nil {
		t.Fatal(err)
	}
	if got := recvEvent(t, rel); got != "data/k" {
		t.Fatalf("relative event = %q", got)
	}

	if err := w.Unwatch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-w.Events(); ok {
		t.Fatal("Events still open after Unwatch")
	}
	if !errors.Is(w.Err(), ErrUnwatched) {
		t.Fatalf("Err after Unwatch = %v", w.Err())
	}
	if err := w.Unwatch(ctx); err != nil {
		t.Fatalf("second Unwatch: %v", err)
	}
	if s.Watches() != 1 {
		t.Fatalf("store still has %d watches, want 1", s.Watches())
	}
	special, err := c.Watch(ctx, ReleaseDomain)
	if err != nil {
		t.Fatal(err)
	}
	if got := recvEvent(t, special); got != ReleaseDomain {
		t.Fatalf("special setup event = %q", got)
	}
}

func recvEvent(t *testing.T, w *Watch) string {
	t.Helper()
	select {
	case p, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch closed: %v", w.Err())
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no event on %s", w.Path())
		return ""
	}
}

func TestSlowWatchConsumerDoesNotBlockReplies(t *testing.T) {
	c, s, p := storeClient(t)
	ctx := testCtx(t)
	w, err := c.Watch(ctx, "/busy")
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads w while far more events arrive than it buffers, yet
	// replies keep flowing.
	for i := range 3 * MaxQueuedEvents {
		for _, ev := range s.write(fmt.Sprintf("/busy/n%d", i), "x") {
			p.push(ev)
		}
		if _, err := c.Read(ctx, "/busy/n0"); err != nil {
			t.Fatal(err)
		}
	}
	if got := recvEvent(t, w); got != "/busy" {
		t.Fatalf("first event = %q, want the setup event", got)
	}
	for _, ev := range s.write("/busy/after", "x") {
		p.push(ev)
	}
	// The backlog ends either with the last change itself or, if it
	// overflowed, with the watched path standing for all of it.
	for got := ""; got != "/busy/after" && got != "/busy"; {
		got = recvEvent(t, w)
	}
}

func TestWatchQueueCoalesces(t *testing.T) {
	w := &Watch{path: "/w", inQueue: map[string]bool{}, kick: make(chan struct{}, 1)}
	w.queue("/w/a")
	w.queue("/w/b")
	w.queue("/w/a")
	if strings.Join(w.queued, ",") != "/w/a,/w/b" {
		t.Fatalf("queue = %q, want duplicates coalesced", w.queued)
	}
	// Fill to the bound, then one more distinct path.
	for i := range MaxQueuedEvents - 1 {
		w.queue(fmt.Sprintf("/w/n%d", i))
	}
	if strings.Join(w.queued, ",") != "/w" {
		t.Fatalf("after overflow queue = %q, want just the watched path", w.queued)
	}
	w.queue("/w/z")
	if p, _ := w.next(); p != "/w" {
		t.Fatalf("next = %q", p)
	}
	if p, _ := w.next(); p != "/w/z" {
		t.Fatalf("next = %q", p)
	}
	if _, ok := w.next(); ok {
		t.Fatal("queue not empty")
	}
}

func TestConcurrentUse(t *testing.T) {
	c, _, _ := storeClient(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := range 40 {
		wg.Go(func() {
			for i := range 25 {
				path := fmt.Sprintf("/g%d/k%d", g, i)
				val := fmt.Sprintf("%d-%d", g, i)
				if err := c.WriteString(ctx, path, val); err != nil {
					errs <- err
					return
				}
				if got, err := c.ReadString(ctx, path); err != nil || got != val {
					errs <- fmt.Errorf("read %s = %q, %v", path, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReadInt(t *testing.T) {
	c, _, _ := storeClient(t)
	ctx := testCtx(t)
	for k, v := range map[string]string{"/n": "-42", "/u": "4294967295", "/big": "4294967296", "/junk": "12abc", "/empty": ""} {
		if err := c.WriteString(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.ReadInt(ctx, "/n"); err != nil || n != -42 {
		t.Fatalf("ReadInt = %d, %v", n, err)
	}
	if n, err := c.ReadUint(ctx, "/u", 32); err != nil || n != 1<<32-1 {
		t.Fatalf("ReadUint = %d, %v", n, err)
	}
	if _, err := c.ReadUint(ctx, "/big", 32); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("out of range: %v", err)
	}
	for _, k := range []string{"/junk", "/empty"} {
		if _, err := c.ReadInt(ctx, k); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), k) {
			t.Fatalf("ReadInt(%s): %v", k, err)
		}
	}
	if _, err := c.ReadUint(ctx, "/n", 32); !errors.Is(err, ErrBadValue) {
		t.Fatalf("negative as unsigned: %v", err)
	}
	if _, err := c.ReadInt(ctx, "/missing"); !errors.Is(err, ErrNoEnt) {
		t.Fatalf("missing: %v", err)
	}
}

func TestWatchSetupFailures(t *testing.T) {
	p := newPipe()
	c := NewClient(p)
	defer c.Close()
	ctx := testCtx(t)

	errc := make(chan error)
	go func() { _, err := c.Watch(ctx, "/secret"); errc <- err }()
	p.push(errReply(p.next(t), "EACCES"))
	if err := <-errc; !errors.Is(err, ErrAccess) || !strings.Contains(err.Error(), "watch /secret") {
		t.Fatalf("refused watch: %v", err)
	}

	// No acknowledgement before the deadline: xenstored may still have set
	// the watch, so the client takes it down again.
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	go func() { _, err := c.Watch(short, "/slow"); errc <- err }()
	set := p.next(t)
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unacknowledged watch: %v", err)
	}
	un := p.next(t)
	if un.Type != xswire.XSUnwatch || !bytes.Equal(un.Payload, set.Payload) {
		t.Fatalf("cleanup sent %v %q, want XS_UNWATCH %q", un.Type, un.Payload, set.Payload)
	}
}
