//go:build !tamago

package xenbus

import (
	"context"
	"fmt"
	"net"
	"os"
)

// DefaultSocketPath is where dom0's xenstored listens; libxenstore lets the
// XENSTORED_PATH environment variable override it, and so does DialSocket.
const DefaultSocketPath = "/var/run/xenstored/socket"

// DialSocket connects to xenstored's Unix socket at path, or at
// $XENSTORED_PATH or DefaultSocketPath when path is empty.
func DialSocket(ctx context.Context, path string) (*Stream, error) {
	if path == "" {
		path = os.Getenv("XENSTORED_PATH")
	}
	if path == "" {
		path = DefaultSocketPath
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("xenbus: connecting to xenstored: %w", err)
	}
	return NewStream(c), nil
}
