package xenbus

import (
	"context"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// Transport moves whole xenstore messages. The Client calls Send from one
// goroutine at a time and Recv from a single reader goroutine, so
// implementations need no locking of their own between two Sends or two
// Recvs (Send and Recv do run concurrently).
type Transport interface {
	// Send writes one message. If ctx ends before any byte was written it
	// returns ctx's error and the transport stays usable; if it ends part
	// way, the byte stream is beyond repair, so the transport must fail from
	// then on (and make Recv return an error).
	Send(ctx context.Context, m xswire.Message) error
	// Recv blocks until the next message arrives. A malformed header, a
	// broken transport or Close make it return an error; after an error
	// Recv is not called again.
	Recv() (xswire.Message, error)
	// Close releases the transport and unblocks Recv.
	Close() error
}
