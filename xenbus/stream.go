package xenbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// Stream is the Transport over a byte stream carrying xsd_sockmsg
// messages back to back: xenstored's Unix socket (see DialSocket) or
// Linux's /dev/xen/xenbus.
type Stream struct {
	rw io.ReadWriteCloser
	r  *bufio.Reader

	mu     sync.Mutex
	broken error
}

// writeDeadliner is the part of net.Conn (and *os.File) a Stream uses to
// make a blocked write honour ctx.
type writeDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// NewStream returns a transport over rw. If rw has SetWriteDeadline, a
// Send blocked on a stuck peer ends with its ctx; otherwise only Close
// ends it.
func NewStream(rw io.ReadWriteCloser) *Stream {
	return &Stream{rw: rw, r: bufio.NewReaderSize(rw, xswire.MessageMax)}
}

// Send writes one whole message.
func (s *Stream) Send(ctx context.Context, m xswire.Message) error {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken != nil {
		return broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if d, ok := s.rw.(writeDeadliner); ok {
		dl, _ := ctx.Deadline() // zero time: no deadline
		if err := d.SetWriteDeadline(dl); err != nil {
			return fmt.Errorf("xenbus: setting write deadline: %w", err)
		}
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			d.SetWriteDeadline(time.Unix(1, 0))
		})
		defer func() {
			if !stop() {
				<-fired // so it cannot cut short the next Send
			}
		}()
	}
	n, err := s.rw.Write(b)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		err = fmt.Errorf("%w (%v)", cerr, err)
	} else if _, has := ctx.Deadline(); has && errors.Is(err, os.ErrDeadlineExceeded) {
		// The write deadline is ctx's deadline; the poller may notice it a
		// moment before ctx does.
		err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	if n > 0 {
		err = fmt.Errorf("xenbus: %v abandoned after %d of %d bytes: %w", m.Type, n, len(b), err)
		s.mu.Lock()
		s.broken = err
		s.mu.Unlock()
		s.rw.Close() // a half-written message cannot be taken back
	}
	return err
}

// Recv reads the next message.
func (s *Stream) Recv() (xswire.Message, error) {
	m, err := xswire.ReadMessage(s.r)
	if errors.Is(err, io.EOF) {
		return m, errors.New("xenbus: xenstored closed the connection")
	}
	return m, err
}

// Close closes the underlying stream.
func (s *Stream) Close() error { return s.rw.Close() }
