// Package bridge serves an HVM guest's QEMU TPM device from the guest's
// vTPM domain. QEMU's `-tpmdev emulator` backend speaks the swtpm socket
// protocol (package swtpm) to a Unix socket; the bridge listens there and
// forwards every TPM command through a vtpm frontend in dom0
// (toolstack/vtpmdev) to the vTPM domain, so the TPM engine and its
// sealed state stay in their own Xen domain while the guest sees an
// ordinary TIS or CRB TPM 2.0.
//
// What QEMU's control messages mean here (docs/hvm-guests.md):
//
//   - CMD_INIT is the guest's platform reset (QEMU sends it whenever it
//     starts the machine, so after every guest reboot): the bridge sends
//     the vTPM domain a platform reset (vtpmdomain/platform), and the
//     guest's firmware or kernel starts the TPM with TPM2_Startup;
//   - CMD_SET_LOCALITY sets the locality of later commands, carried in the
//     tpmif page's locality byte;
//   - CMD_CANCEL_TPM_CMD cancels the command in flight through tpmif's
//     CANCEL; QEMU then gets TPM_RC_CANCELED unless the vTPM had finished;
//   - CMD_STOP (QEMU stops the TPM before resizing its buffer) leaves the
//     vTPM alone; commands until the next CMD_INIT are refused;
//   - CMD_SHUTDOWN (QEMU exits: the guest powered off or rebooted) and
//     CMD_STORE_VOLATILE need nothing: the vTPM domain has stored every
//     change before answering it. The bridge keeps listening for the next
//     QEMU of the same guest;
//   - state blobs are not offered (the state lives in the vTPM domain), so
//     QEMU refuses to migrate the guest.
//
// When the vTPM domain goes away the bridge answers every command with
// TPM_RC_FAILURE (QEMU and the guest keep running; the guest's TPM fails)
// and Serve returns ErrVTPMGone.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/swtpm"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
)

// Link is the way to the guest's vTPM: a *vtpmdev.Device in dom0.
type Link interface {
	// Send sends cmd at locality and returns the response; if ctx ends
	// first the command is cancelled.
	Send(ctx context.Context, locality uint8, cmd []byte) ([]byte, error)
	// Lost is closed once the vTPM is gone for good; Gone then says why.
	Lost() <-chan struct{}
	Gone() error
}

// BufferSize is the largest command and response a tpmif page carries
// (4096 bytes less its 8-byte header); QEMU is told so with
// CMD_SET_BUFFERSIZE.
const BufferSize = 4088

// CommandTimeout bounds one command through the link, so a vTPM domain
// that stops answering cannot hold QEMU's TPM worker for ever.
const CommandTimeout = tpmfront.DefaultTimeout

// ResetTimeout bounds the platform reset at CMD_INIT.
const ResetTimeout = 30 * time.Second

// ErrVTPMGone is wrapped by Serve's error when the vTPM domain went away.
var ErrVTPMGone = errors.New("the vTPM domain is gone")

// Config is what a Bridge needs.
type Config struct {
	Link Link
	// Socket is the path of the Unix socket QEMU's
	// `-chardev socket,path=...` connects to. A stale socket file there is
	// replaced.
	Socket string
	// Logf receives what happens; nil discards it.
	Logf func(format string, a ...any)
	// Verbose logs every control message too.
	Verbose bool
}

// Stats counts the bridge's work.
type Stats struct {
	Connections, Commands, Resets, Cancelled, Failed uint64
}

// Bridge serves one guest's QEMU.
type Bridge struct {
	cfg Config
	srv *swtpm.Server
	l   *net.UnixListener

	commands, resets, cancelled, failed, connections atomic.Uint64

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// Listen creates the socket.
func Listen(cfg Config) (*Bridge, error) {
	if cfg.Link == nil || cfg.Socket == "" {
		return nil, errors.New("bridge: Config needs Link and Socket")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if fi, err := os.Lstat(cfg.Socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("bridge: %s exists and is not a socket", cfg.Socket)
		}
		os.Remove(cfg.Socket)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b := &Bridge{cfg: cfg, l: l, conns: map[net.Conn]bool{}}
	b.srv = swtpm.New(swtpm.Config{TPM: device{b}, BufferSize: BufferSize, Logf: cfg.Logf, Verbose: cfg.Verbose})
	return b, nil
}

// Stats returns the counters.
func (b *Bridge) Stats() Stats {
	return Stats{Connections: b.connections.Load(), Commands: b.commands.Load(), Resets: b.resets.Load(),
		Cancelled: b.cancelled.Load(), Failed: b.failed.Load()}
}

// Serve accepts QEMU's connections until ctx ends (nil) or the vTPM
// domain goes away (an error wrapping ErrVTPMGone). Either way the socket
// is closed and removed; the link is the caller's to close.
func (b *Bridge) Serve(ctx context.Context) error {
	defer os.Remove(b.cfg.Socket)
	var wg sync.WaitGroup
	go func() {
		select {
		case <-ctx.Done():
		case <-b.cfg.Link.Lost():
		}
		b.l.Close()
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
	}()
	for {
		c, err := b.l.AcceptUnix()
		if err != nil {
			wg.Wait()
			if gone := b.cfg.Link.Gone(); gone != nil {
				return fmt.Errorf("bridge: %w: %v", ErrVTPMGone, gone)
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("bridge: accept: %w", err)
		}
		n := b.connections.Add(1)
		b.cfg.Logf("QEMU connected (connection %d)", n)
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.srv.ServeControl(c)
			c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			b.cfg.Logf("QEMU disconnected (connection %d)", n)
		}()
	}
}

// device is the bridge as the swtpm protocol's TPM.
type device struct{ b *Bridge }

// TPM 2.0 response codes the bridge answers with itself.
const (
	rcFailure  = 0x101 // TPM_RC_FAILURE
	rcCanceled = 0x909 // TPM_RC_CANCELED
	tpmFail    = 9     // TPM 1.2 TPM_FAIL
)

func (d device) Execute(ctx context.Context, cmd []byte, locality uint8) []byte {
	b := d.b
	b.commands.Add(1)
	if err := b.cfg.Link.Gone(); err != nil {
		b.failed.Add(1)
		return swtpm.ErrorResponse(cmd, rcFailure, tpmFail)
	}
	// A guest never sends platform commands; they are only the bridge's.
	if _, ok := platform.Code(cmd); ok {
		b.failed.Add(1)
		return swtpm.ErrorResponse(cmd, platform.RCCommandCode, tpmFail)
	}
	cctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	rsp, err := b.cfg.Link.Send(cctx, locality, cmd)
	switch {
	case err == nil:
		return rsp
	case errors.Is(err, tpmfront.ErrCanceled) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		b.cancelled.Add(1)
		if ctx.Err() == nil {
			b.cfg.Logf("command %s: no answer within %v: cancelled", ccString(cmd), CommandTimeout)
		}
		return swtpm.ErrorResponse(cmd, rcCanceled, tpmFail)
	default:
		b.failed.Add(1)
		if errors.Is(err, tpmfront.ErrGone) {
			b.cfg.Logf("the vTPM domain is gone (%v): the guest's TPM commands now fail", err)
		} else {
			b.cfg.Logf("command %s: %v", ccString(cmd), err)
		}
		return swtpm.ErrorResponse(cmd, rcFailure, tpmFail)
	}
}

// Init is the guest's platform reset.
func (d device) Init() error {
	b := d.b
	ctx, cancel := context.WithTimeout(context.Background(), ResetTimeout)
	defer cancel()
	rsp, err := b.cfg.Link.Send(ctx, 0, platform.Marshal(platform.CCPlatformReset))
	if err == nil {
		err = platform.Check(platform.CCPlatformReset, rsp)
	}
	if err != nil {
		return fmt.Errorf("resetting the vTPM: %w", err)
	}
	n := b.resets.Add(1)
	b.cfg.Logf("guest platform reset %d: vTPM reset, TPM2_Startup expected from the guest", n)
	return nil
}

func (d device) Stop() error { return nil }

func (d device) Shutdown() error {
	d.b.cfg.Logf("QEMU shut its TPM down (the guest stopped or is rebooting); the vTPM keeps its state")
	return nil
}

func (d device) StoreVolatile() error { return nil }

// ccString names a command by its code for the log.
func ccString(cmd []byte) string {
	if len(cmd) < 10 {
		return fmt.Sprintf("of %d bytes", len(cmd))
	}
	return fmt.Sprintf("%#x", uint32(cmd[6])<<24|uint32(cmd[7])<<16|uint32(cmd[8])<<8|uint32(cmd[9]))
}
