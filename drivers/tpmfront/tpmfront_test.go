package tpmfront

// The handshake and command path are tested end to end against tpmback in
// backend_test.go.

import (
	"context"
	"testing"
	"time"
)

func TestOpenNeedsConfig(t *testing.T) {
	if _, err := Open(context.Background(), Config{}); err == nil {
		t.Fatal("Open with no Store, Grants or Events succeeded")
	}
}

func TestTransportTimeout(t *testing.T) {
	f := &Front{}
	if tr := f.TPM(0).(tpmTransport); tr.timeout != DefaultTimeout {
		t.Errorf("default timeout %v", tr.timeout)
	}
	if tr := f.TPM(time.Second).(tpmTransport); tr.timeout != time.Second {
		t.Errorf("timeout %v", tr.timeout)
	}
	f.closed = true
	if _, err := f.TPM(time.Second).Send([]byte{1}); err != ErrClosed {
		t.Errorf("Send on a closed Front: %v", err)
	}
}
