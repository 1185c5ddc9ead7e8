//go:build !tamago

package xenbus

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// listen starts a fake xenstored on a temporary Unix socket; serve is
// called for every accepted connection.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serve(conn)
		}
	}()
	return path
}

func serveStoreOn(st *fakeStore) func(net.Conn) {
	return func(conn net.Conn) {
		defer conn.Close()
		for {
			m, err := xswire.ReadMessage(conn)
			if err != nil {
				return
			}
			for _, r := range st.handle(m) {
				b, _ := r.MarshalBinary()
				if _, err := conn.Write(b); err != nil {
					return
				}
			}
		}
	}
}

func TestSocketTransport(t *testing.T) {
	st := newFakeStore(0)
	path := listen(t, serveStoreOn(st))
	ctx := testCtx(t)
	s, err := DialSocket(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(s)
	defer c.Close()
	w, err := c.Watch(ctx, "/vm")
	if err != nil {
		t.Fatal(err)
	}
	recvEvent(t, w)
	if err := c.WriteString(ctx, "/vm/uuid", "0123"); err != nil {
		t.Fatal(err)
	}
	if got := recvEvent(t, w); got != "/vm/uuid" {
		t.Fatalf("event %q", got)
	}
	if got, err := c.ReadString(ctx, "/vm/uuid"); err != nil || got != "0123" {
		t.Fatalf("read %q, %v", got, err)
	}
	err = c.Transaction(ctx, func(tx *Tx) error { return tx.WriteString(ctx, "/vm/name", "g") })
	if err != nil {
		t.Fatal(err)
	}
}

func TestSocketEnvironmentPath(t *testing.T) {
	path := listen(t, serveStoreOn(newFakeStore(0)))
	t.Setenv("XENSTORED_PATH", path)
	s, err := DialSocket(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	t.Setenv("XENSTORED_PATH", filepath.Join(t.TempDir(), "none"))
	if _, err := DialSocket(testCtx(t), ""); err == nil || !strings.Contains(err.Error(), "connecting to xenstored") {
		t.Fatalf("dial of a missing socket: %v", err)
	}
}

func TestSocketServerMisbehaves(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(req xswire.Message) []byte
		want  string
	}{
		{"oversized reply", func(req xswire.Message) []byte {
			return binaryHeader(uint32(xswire.XSRead), req.ReqID, 0, 4097)
		}, "4097-byte payload"},
		{"unknown type", func(req xswire.Message) []byte {
			return binaryHeader(77, req.ReqID, 0, 0)
		}, "unknown message type 77"},
		{"truncated header", func(req xswire.Message) []byte {
			return binaryHeader(uint32(xswire.XSRead), req.ReqID, 0, 0)[:9]
		}, "truncated header"},
		{"truncated payload", func(req xswire.Message) []byte {
			return append(binaryHeader(uint32(xswire.XSRead), req.ReqID, 0, 10), "abc"...)
		}, "truncated XS_READ payload"},
		{"hangs up", func(xswire.Message) []byte { return nil }, "closed the connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := listen(t, func(conn net.Conn) {
				defer conn.Close()
				req, err := xswire.ReadMessage(conn)
				if err != nil {
					return
				}
				conn.Write(tc.reply(req))
			})
			s, err := DialSocket(testCtx(t), path)
			if err != nil {
				t.Fatal(err)
			}
			c := NewClient(s)
			defer c.Close()
			_, err = c.Read(testCtx(t), "/x")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestSocketSendHonoursDeadline(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	path := listen(t, func(conn net.Conn) { <-stuck; conn.Close() }) // never reads
	s, err := DialSocket(testCtx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Send until the socket buffers are full and a write blocks; the
	// deadline must end it.
	m := xswire.Message{Type: xswire.XSWrite, ReqID: 1, Payload: make([]byte, 4000)}
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := s.Send(ctx, m)
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want deadline", err)
			}
			break
		}
		if i > 100000 {
			t.Fatal("socket never filled")
		}
	}
	if err := s.Send(testCtx(t), xswire.Message{Type: 99}); err == nil {
		t.Fatal("sent an unknown message type")
	}
}
