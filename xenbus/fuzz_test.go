package xenbus

import (
	"bytes"
	"context"
	"testing"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// FuzzClientDispatch feeds an arbitrary reply stream to a Client that has
// a read, a watch and a transaction in flight: whatever arrives, every
// caller returns (with a value or an error) once the stream ends, and
// nothing panics.
func FuzzClientDispatch(f *testing.F) {
	enc := func(ms ...xswire.Message) []byte {
		var b []byte
		for _, m := range ms {
			b, _ = m.Append(b)
		}
		return b
	}
	f.Add(enc(xswire.Message{Type: xswire.XSRead, ReqID: 1, Payload: []byte("v")}))
	f.Add(enc(xswire.Message{Type: xswire.XSError, ReqID: 2, Payload: []byte("EAGAIN\x00")},
		xswire.Message{Type: xswire.XSWatchEvent, Payload: []byte("/w\x00xvt1\x00")}))
	f.Add(enc(xswire.Message{Type: xswire.XSWatch, ReqID: 2, Payload: []byte("OK\x00")},
		xswire.Message{Type: xswire.XSWatchEvent, Payload: []byte("/w/x\x00xvt1\x00")},
		xswire.Message{Type: xswire.XSTransactionStart, ReqID: 3, Payload: []byte("5\x00")},
		xswire.Message{Type: xswire.XSRead, ReqID: 1, Payload: []byte("value")}))
	f.Add(enc(xswire.Message{Type: xswire.XSTransactionStart, ReqID: 3, Payload: []byte("x\x00")}))
	f.Add(binaryHeader(2, 1, 0, 4097))
	f.Fuzz(func(t *testing.T, stream []byte) {
		p := newPipe()
		c := NewClient(p, WithErrorHandler(func(error) {}))
		ctx := context.Background()
		done := make(chan struct{}, 3)
		go func() { c.Read(ctx, "/r"); done <- struct{}{} }()
		p.next(t)
		go func() {
			if w, err := c.Watch(ctx, "/w"); err == nil {
				for range w.Events() {
				}
			}
			done <- struct{}{}
		}()
		p.next(t)
		go func() {
			c.Transaction(ctx, func(tx *Tx) error { _, err := tx.Read(ctx, "/t"); return err })
			done <- struct{}{}
		}()
		p.next(t)
		go func() { // swallow whatever else the client sends
			for {
				select {
				case <-p.toServer:
				case <-p.closed:
					return
				}
			}
		}()
		r := bytes.NewReader(stream)
		for {
			m, err := xswire.ReadMessage(r)
			if err != nil {
				break
			}
			p.push(m)
		}
		c.Close()
		for range 3 {
			<-done
		}
	})
}
