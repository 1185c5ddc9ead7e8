// Package swtpm serves the socket protocol of swtpm
// (github.com/stefanberger/swtpm) to its clients, QEMU's `-tpmdev
// emulator` and tpm2-tss's swtpm TCTI:
//
//   - the control channel of swtpm's include/swtpm/tpm_ioctl.h: a 32-bit
//     big-endian CMD_* code followed by its request structure, answered
//     with its response structure (every field big-endian, C padding
//     kept). Over a Unix socket it also takes CMD_SET_DATAFD, with which
//     QEMU hands over the data channel as a descriptor (SCM_RIGHTS);
//   - the data channel: raw TPM commands and responses, framed only by the
//     size field of the TPM header.
//
// What a control message means is the TPM's business (interface TPM):
// cmd/vtpmd serves its own engine, the dom0 bridge (toolstack/bridge) a
// vTPM domain. State blobs (CMD_GET_STATEBLOB/SET_STATEBLOB, what QEMU
// migrates) are not offered: their capability bits are not announced, so
// QEMU blocks migration of the guest, and a client that sends them anyway
// gets TPM_FAIL in a well-formed answer.
package swtpm

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/xenvtpm/xenvtpm/internal/connset"
)

// TPM is what the protocol serves.
type TPM interface {
	// Execute runs one command received at locality and returns its
	// response (always one: an error response if need be). ctx ends when
	// the client cancels the command (CMD_CANCEL_TPM_CMD) or its data
	// channel closes.
	Execute(ctx context.Context, cmd []byte, locality uint8) []byte
	// Init is CMD_INIT: the platform switches the TPM on or resets it
	// (_TPM_Init); TPM2_Startup is expected next.
	Init() error
	// Stop is CMD_STOP: the TPM is off until the next Init. Commands meanwhile
	// are answered with a failure by the Server itself.
	Stop() error
	// Shutdown is CMD_SHUTDOWN: the client is done with the TPM (QEMU
	// sends it as it exits).
	Shutdown() error
	// StoreVolatile is CMD_STORE_VOLATILE: keep the volatile state.
	StoreVolatile() error
}

// CMD_* codes of tpm_ioctl.h.
const (
	CmdGetCapability     = 1
	CmdInit              = 2
	CmdShutdown          = 3
	CmdGetTPMEstablished = 4
	CmdSetLocality       = 5
	CmdHashStart         = 6
	CmdHashData          = 7
	CmdHashEnd           = 8
	CmdCancelTPMCmd      = 9
	CmdStoreVolatile     = 10
	CmdResetTPMEstablish = 11
	CmdGetStateBlob      = 12
	CmdSetStateBlob      = 13
	CmdStop              = 14
	CmdGetConfig         = 15
	CmdSetDataFD         = 16
	CmdSetBufferSize     = 17
	CmdGetInfo           = 18
	CmdLockStorage       = 19
)

// PTM_CAP_* bits of CMD_GET_CAPABILITY.
const (
	CapInit             = 1 << 0
	CapShutdown         = 1 << 1
	CapGetEstablished   = 1 << 2
	CapSetLocality      = 1 << 3
	CapCancelTPMCmd     = 1 << 5
	CapStoreVolatile    = 1 << 6
	CapResetEstablished = 1 << 7
	CapStop             = 1 << 10
	CapGetConfig        = 1 << 11
	CapSetDataFD        = 1 << 12
	CapSetBufferSize    = 1 << 13
)

// Results in control answers (TPM 1.2 codes, as swtpm uses them).
const (
	ResultSuccess     = 0
	ResultFail        = 9    // TPM_FAIL
	ResultBadLocality = 0x3d // TPM_BAD_LOCALITY
	ResultBadParam    = 3    // TPM_BAD_PARAMETER
)

// MaxFrame bounds a command's framing length: beyond it the client is
// broken and its data channel is dropped after one error answer.
const MaxFrame = 64 * 1024

// MinBufferSize is the smallest buffer CMD_SET_BUFFERSIZE grants.
const MinBufferSize = 1024

// Config is what a Server needs.
type Config struct {
	TPM TPM
	// BufferSize is the largest command and response the TPM takes,
	// announced by CMD_SET_BUFFERSIZE; 0 means 4096. Longer commands are
	// answered TPM_RC_COMMAND_SIZE without reaching the TPM.
	BufferSize int
	// Logf receives protocol trouble and, with Verbose, every control
	// request; nil discards them.
	Logf    func(format string, a ...any)
	Verbose bool
	// BlockingData is how many data channels at most are read by a thread
	// blocked in the kernel instead of through Go's network poller
	// (internal/connset: faster small commands, a thread each). 0: none.
	BlockingData int
}

// Server serves one TPM over any number of control and data channels.
type Server struct {
	cfg Config

	mu       sync.Mutex
	locality uint8
	stopped  bool
	buffer   int
	cancel   context.CancelFunc // of the command in progress, if any

	data connset.Set
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 4096
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return &Server{cfg: cfg, buffer: cfg.BufferSize, data: connset.Set{Blocking: cfg.BlockingData}}
}

// Locality is the locality of the client's next commands.
func (s *Server) Locality() uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locality
}

// ServeData serves the data channel c until it closes or CloseData is
// called. The caller closes c.
func (s *Server) ServeData(conn net.Conn) {
	c, ok := s.data.Add(conn)
	if !ok {
		return
	}
	defer s.data.Done(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmdCtx := cmdContext{parent: ctx}
	// A client writes a command in one piece: one read takes its header
	// and body together.
	r := bufio.NewReaderSize(c, 4096)
	hdr := make([]byte, 10)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[2:])
		if n < 10 || n > MaxFrame {
			s.cfg.Logf("swtpm: data channel: command size %d cannot be framed; answering and closing", n)
			c.Write(ErrorResponse(hdr, RCFailure, ResultFail))
			return
		}
		cmd := make([]byte, n)
		copy(cmd, hdr)
		if _, err := io.ReadFull(r, cmd[10:]); err != nil {
			return
		}
		if _, err := c.Write(s.execute(&cmdCtx, cmd)); err != nil {
			return
		}
	}
}

// closeGrace is how long CloseData lets the commands in progress be
// answered before it also shuts down the sending side of their channels.
const closeGrace = 5 * time.Second

// CloseData ends every data channel and serves no new one: a command in
// progress still gets its response (see connset.Set.Close). It returns
// once no channel is served any more.
func (s *Server) CloseData() { s.data.Close(closeGrace) }

// TPM 2.0 response codes the Server answers itself.
const (
	RCFailure     = 0x101 // TPM_RC_FAILURE
	RCCommandSize = 0x142 // TPM_RC_COMMAND_SIZE
)

// cmdContext is the context of a data channel's commands, which
// CMD_CANCEL_TPM_CMD cancels: one serves command after command until it is
// cancelled, so a command costs no allocation for it.
type cmdContext struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

// next is the context for the channel's next command.
func (c *cmdContext) next() (context.Context, context.CancelFunc) {
	if c.ctx == nil || c.ctx.Err() != nil {
		c.ctx, c.cancel = context.WithCancel(c.parent)
	}
	return c.ctx, c.cancel
}

func (s *Server) execute(cc *cmdContext, cmd []byte) []byte {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrorResponse(cmd, RCFailure, ResultFail)
	}
	if len(cmd) > s.buffer {
		s.mu.Unlock()
		return ErrorResponse(cmd, RCCommandSize, ResultBadParam)
	}
	loc := s.locality
	ctx, cancel := cc.next()
	s.cancel = cancel
	s.mu.Unlock()
	rsp := s.cfg.TPM.Execute(ctx, cmd, loc)
	s.mu.Lock()
	s.cancel = nil
	s.mu.Unlock()
	return rsp
}

// ErrorResponse is a 10-byte error response in the family of cmd's tag: a
// TPM 2.0 tag (0x80xx) gets TPM_ST_NO_SESSIONS and rc2, anything else TPM
// 1.2's TPM_TAG_RSP_COMMAND and rc12.
func ErrorResponse(cmd []byte, rc2, rc12 uint32) []byte {
	rsp := make([]byte, 10)
	binary.BigEndian.PutUint32(rsp[2:], 10)
	if len(cmd) >= 2 && cmd[0] == 0x80 {
		binary.BigEndian.PutUint16(rsp, 0x8001)
		binary.BigEndian.PutUint32(rsp[6:], rc2)
	} else {
		binary.BigEndian.PutUint16(rsp, 0x00c4)
		binary.BigEndian.PutUint32(rsp[6:], rc12)
	}
	return rsp
}

// Capabilities are the control commands this Server answers.
const Capabilities = CapInit | CapShutdown | CapGetEstablished | CapSetLocality | CapCancelTPMCmd |
	CapStoreVolatile | CapResetEstablished | CapStop | CapGetConfig | CapSetBufferSize

// ServeControl serves the control channel c until it closes. A control
// channel over a Unix socket also takes CMD_SET_DATAFD; the data channel
// it brings is served until it closes.
func (s *Server) ServeControl(c net.Conn) {
	uc, _ := c.(*net.UnixConn)
	buf := make([]byte, 4096)
	for {
		n, fds, err := readControl(c, uc, buf)
		if err != nil {
			return
		}
		if n < 4 {
			s.cfg.Logf("swtpm: control channel: %d-byte request; closing", n)
			closeFDs(fds)
			return
		}
		code := binary.BigEndian.Uint32(buf)
		if s.cfg.Verbose {
			s.cfg.Logf("swtpm: control %s (%d bytes, %d descriptors)", cmdName(code), n, len(fds))
		}
		rsp, err := s.control(code, buf[4:n], fds, c)
		if err != nil {
			s.cfg.Logf("swtpm: control channel: %v; closing", err)
			return
		}
		if _, err := c.Write(rsp); err != nil {
			return
		}
	}
}

// control answers one control request. fds are the descriptors that came
// with it; control owns them.
func (s *Server) control(code uint32, body []byte, fds []int, c net.Conn) ([]byte, error) {
	if code != CmdSetDataFD {
		closeFDs(fds)
		fds = nil
	}
	result := func(err error) []byte {
		if err != nil {
			s.cfg.Logf("swtpm: %s: %v", cmdName(code), err)
			return u32(ResultFail)
		}
		return u32(ResultSuccess)
	}
	switch code {
	case CmdGetCapability:
		caps := uint64(Capabilities)
		if _, ok := c.(*net.UnixConn); ok {
			caps |= CapSetDataFD
		}
		return binary.BigEndian.AppendUint64(nil, caps), nil
	case CmdInit:
		err := s.cfg.TPM.Init()
		if err == nil {
			s.mu.Lock()
			s.stopped = false
			s.mu.Unlock()
		}
		return result(err), nil
	case CmdStop:
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		return result(s.cfg.TPM.Stop()), nil
	case CmdShutdown:
		return result(s.cfg.TPM.Shutdown()), nil
	case CmdStoreVolatile:
		return result(s.cfg.TPM.StoreVolatile()), nil
	case CmdGetTPMEstablished:
		// struct ptm_est: result, the bit, C padding to 8 bytes. The
		// flag is set only by a dynamic launch (_TPM_Hash_Start at
		// locality 4), which no client of this protocol can signal
		// (the hash commands are not offered), so it is never set.
		return append(u32(ResultSuccess), 0, 0, 0, 0), nil
	case CmdResetTPMEstablish:
		return u32(ResultSuccess), nil
	case CmdSetLocality:
		if len(body) < 1 || body[0] > 4 {
			return u32(ResultBadLocality), nil
		}
		s.mu.Lock()
		s.locality = body[0]
		s.mu.Unlock()
		return u32(ResultSuccess), nil
	case CmdCancelTPMCmd:
		s.mu.Lock()
		if s.cancel != nil {
			s.cancel()
		}
		s.mu.Unlock()
		return u32(ResultSuccess), nil
	case CmdGetConfig:
		return append(u32(ResultSuccess), 0, 0, 0, 0), nil
	case CmdSetBufferSize:
		want := 0
		if len(body) >= 4 {
			want = int(binary.BigEndian.Uint32(body))
		}
		s.mu.Lock()
		if want != 0 {
			s.buffer = min(max(want, MinBufferSize), s.cfg.BufferSize)
		}
		got := s.buffer
		s.mu.Unlock()
		rsp := u32(ResultSuccess)
		for _, v := range []int{got, MinBufferSize, s.cfg.BufferSize} {
			rsp = binary.BigEndian.AppendUint32(rsp, uint32(v))
		}
		return rsp, nil
	case CmdSetDataFD:
		if len(fds) == 0 {
			return u32(ResultFail), nil
		}
		closeFDs(fds[1:])
		f := os.NewFile(uintptr(fds[0]), "swtpm-data")
		dc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return result(fmt.Errorf("data channel descriptor: %w", err)), nil
		}
		go func() {
			defer dc.Close()
			s.ServeData(dc)
		}()
		return u32(ResultSuccess), nil
	case CmdGetStateBlob:
		s.cfg.Logf("swtpm: %s refused: this TPM's state cannot be exported through this channel", cmdName(code))
		// struct ptm_getstate's answer: result, flags, totlength, length.
		return append(u32(ResultFail), make([]byte, 12)...), nil
	case CmdSetStateBlob, CmdHashData:
		// The request announces a body that follows; read it so it is
		// not taken for the next request.
		if err := s.discardBody(code, body, c); err != nil {
			return nil, err
		}
		return u32(ResultFail), nil
	case CmdGetInfo:
		// struct ptm_getinfo's answer: result, totlength, length.
		return append(u32(ResultFail), make([]byte, 8)...), nil
	default:
		return u32(ResultFail), nil
	}
}

// discardBody consumes the body announced by CMD_SET_STATEBLOB (flags,
// type, length, data) or CMD_HASH_DATA (length, data): whatever of it
// came with the request, then the rest from c.
func (s *Server) discardBody(code uint32, body []byte, c net.Conn) error {
	off := 0
	if code == CmdSetStateBlob {
		off = 8
	}
	if len(body) < off+4 {
		return fmt.Errorf("%s: truncated request", cmdName(code))
	}
	n := int64(binary.BigEndian.Uint32(body[off:]))
	have := int64(len(body) - off - 4)
	if n > MaxFrame*16 {
		return fmt.Errorf("%s: announced body of %d bytes", cmdName(code), n)
	}
	s.cfg.Logf("swtpm: %s refused: not offered by this TPM", cmdName(code))
	if n > have {
		if _, err := io.CopyN(io.Discard, c, n-have); err != nil {
			return fmt.Errorf("%s: reading its body: %w", cmdName(code), err)
		}
	}
	return nil
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

var cmdNames = map[uint32]string{
	CmdGetCapability: "CMD_GET_CAPABILITY", CmdInit: "CMD_INIT", CmdShutdown: "CMD_SHUTDOWN",
	CmdGetTPMEstablished: "CMD_GET_TPMESTABLISHED", CmdSetLocality: "CMD_SET_LOCALITY",
	CmdHashStart: "CMD_HASH_START", CmdHashData: "CMD_HASH_DATA", CmdHashEnd: "CMD_HASH_END",
	CmdCancelTPMCmd: "CMD_CANCEL_TPM_CMD", CmdStoreVolatile: "CMD_STORE_VOLATILE",
	CmdResetTPMEstablish: "CMD_RESET_TPMESTABLISHED", CmdGetStateBlob: "CMD_GET_STATEBLOB",
	CmdSetStateBlob: "CMD_SET_STATEBLOB", CmdStop: "CMD_STOP", CmdGetConfig: "CMD_GET_CONFIG",
	CmdSetDataFD: "CMD_SET_DATAFD", CmdSetBufferSize: "CMD_SET_BUFFERSIZE", CmdGetInfo: "CMD_GET_INFO",
	CmdLockStorage: "CMD_LOCK_STORAGE",
}

func cmdName(code uint32) string {
	if n, ok := cmdNames[code]; ok {
		return n
	}
	return fmt.Sprintf("control command %d", code)
}

// readControl reads one control request. The protocol has no framing:
// each request arrives in one write, so one read is one request.
func readControl(c net.Conn, uc *net.UnixConn, buf []byte) (int, []int, error) {
	if uc == nil {
		n, err := c.Read(buf)
		return n, nil, err
	}
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return 0, nil, err
	}
	var fds []int
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return 0, nil, fmt.Errorf("control message: %w", err)
		}
		for _, m := range msgs {
			if f, err := syscall.ParseUnixRights(&m); err == nil {
				fds = append(fds, f...)
			}
		}
	}
	if n == 0 {
		closeFDs(fds)
		return 0, nil, io.EOF
	}
	return n, fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}
