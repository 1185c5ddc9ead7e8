// Package tpmdev is a Linux TPM character device (/dev/tpm0, /dev/tpmrm0)
// as a transport for the small static TPM clients that run inside test-bed
// guests: one command written, its response read (the Linux TPM driver's
// read/write interface).
//
// It uses plain system calls: os.File would make the descriptor
// non-blocking for Go's poller, and a non-blocking write to a Linux TPM
// device only queues the command, so the read that follows can find no
// response yet and return 0 bytes. Blocking, the write transmits the
// command and the read returns its response.
package tpmdev

import (
	"fmt"
	"syscall"
)

// Dev is an open TPM device.
type Dev struct {
	path string
	fd   int
	buf  []byte
}

// Open opens the device at path.
func Open(path string) (*Dev, error) {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Dev{path: path, fd: fd, buf: make([]byte, 4096)}, nil
}

// Send writes cmd and returns the response, valid until the next Send.
// Errors wrap the system call's errno (xen-tpmfront answers an interrupted
// wait with ETIME).
func (d *Dev) Send(cmd []byte) ([]byte, error) {
	if _, err := syscall.Write(d.fd, cmd); err != nil {
		return nil, fmt.Errorf("write %s: %w", d.path, err)
	}
	n, err := syscall.Read(d.fd, d.buf)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.path, err)
	}
	return d.buf[:n], nil
}

// Close closes the device.
func (d *Dev) Close() error { return syscall.Close(d.fd) }
