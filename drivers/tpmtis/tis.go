package tpmtis

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultBase is the physical address of locality 0's register page on PC
// platforms (PTP §6.3.2: 0xFED40000-0xFED44FFF).
const DefaultBase = 0xFED40000

const (
	headerSize = 10 // tag(2) size(4) code(4) of every TPM 1.2 and 2.0 message

	// MaxBuffer is the largest command or response the driver moves: the
	// TIS/PTP FIFO buffer QEMU implements and the size most discrete TPMs
	// report (TPM_PT_MAX_COMMAND_SIZE / TPM_PT_MAX_RESPONSE_SIZE).
	MaxBuffer = 4096
)

// Errors a caller may test for with errors.Is. Every returned error wraps
// one of these with the details.
var (
	ErrNoTPM           = errors.New("tpmtis: no TPM at this address")
	ErrBadLocality     = errors.New("tpmtis: locality out of range 0-4")
	ErrLocality        = errors.New("tpmtis: locality not granted")
	ErrLocalityLost    = errors.New("tpmtis: locality lost during a command")
	ErrTimeout         = errors.New("tpmtis: TPM timed out")
	ErrBurstCount      = errors.New("tpmtis: burstCount stayed 0")
	ErrProtocol        = errors.New("tpmtis: FIFO protocol violation")
	ErrBadCommand      = errors.New("tpmtis: malformed command")
	ErrBadResponse     = errors.New("tpmtis: malformed response")
	ErrRetryExhausted  = errors.New("tpmtis: TPM kept asking for a retry")
	ErrClosed          = errors.New("tpmtis: driver closed")
	ErrUnsupportedIntf = errors.New("tpmtis: interface is not a TIS/FIFO interface")
)

// Family is the TPM specification family.
type Family int

const (
	FamilyUnknown Family = iota
	Family12             // TPM 1.2 (TPM Main Specification)
	Family20             // TPM 2.0 (TPM Library Specification)
)

func (f Family) String() string {
	switch f {
	case Family12:
		return "1.2"
	case Family20:
		return "2.0"
	}
	return "unknown"
}

// Config selects the TPM and tunes the driver. The zero value of every field
// but Locality has a working default.
type Config struct {
	// Base is the physical address of locality 0's page (DefaultBase if 0).
	// Used by Open only.
	Base uint64
	// Locality is 0-4. Only base + Locality·0x1000 is ever accessed.
	Locality int

	// Clock defaults to the time package.
	Clock Clock
	// PollInterval is the pause between two reads of a status register
	// while waiting (default 20µs: a TPM 2.0 answers simple commands in
	// tens of microseconds, and each read is a trap under virtualisation).
	PollInterval time.Duration
	// BusyTimeout bounds how long a locality held by another locality is
	// waited for after timeout A has passed (default 30s).
	BusyTimeout time.Duration
	// Seize takes the TPM from a lower locality that still holds it after
	// timeout A (TPM_ACCESS.Seize; only a higher locality can) instead of
	// waiting up to BusyTimeout. For firmware that leaves its locality
	// active and goes away (SeaBIOS leaves locality 0). It aborts what
	// the lower locality was doing, so only for a TPM nobody else uses.
	Seize bool
	// MaxRetries bounds resends of a command answered with TPM_RC_RETRY,
	// TPM_RC_YIELDED (2.0) or TPM_RETRY (1.2) (default 8).
	MaxRetries int
	// WideFIFO moves FIFO data with 4-byte accesses where at least four
	// bytes remain in the burst, cutting register accesses per command by
	// about two thirds. PTP FIFO TPMs and QEMU's tpm-tis accept them; TIS
	// 1.2 parts and Linux's driver use single bytes, which is the default.
	// Worth it where each access traps (an emulated TIS under Xen).
	WideFIFO bool

	// Timeouts and Durations override what the driver would use for the
	// detected family (TPM 2.0 defaults, or what a TPM 1.2 reports).
	Timeouts  *Timeouts
	Durations *Durations
}

// Info describes the TPM found at Open/New.
type Info struct {
	Family           Family
	VendorID         uint16 // TPM_DID_VID bits 0..15 (PCI-style vendor ID)
	DeviceID         uint16 // TPM_DID_VID bits 16..31
	RevisionID       uint8  // TPM_RID
	IntfCapability   uint32 // TPM_INTF_CAPABILITY raw value
	InterfaceVersion uint8  // IntfCapability bits 28..30: 0/2 TIS (1.2), 3 PTP FIFO (2.0)
	InterfaceID      uint32 // TPM_INTERFACE_ID raw value (all ones on TIS 1.3 parts)
	// RegisterFamily is what the interface registers claim; Family is what
	// the probe command answered (they agree on a healthy TPM).
	RegisterFamily Family
	Locality       int
	Timeouts       Timeouts
	Durations      Durations
	// ReportedTimings is true when a TPM 1.2 reported its own timeouts and
	// durations through TPM_GetCapability.
	ReportedTimings bool
}

// TPM is a TPM reached through the FIFO interface at one locality. It is safe
// for concurrent use; commands are serialised.
type TPM struct {
	mu   sync.Mutex
	regs Registers
	clk  Clock
	cfg  Config
	info Info

	timeouts  Timeouts
	durations Durations

	stats   Stats
	pending []byte // response waiting to be Read (io.ReadWriter use)
	hasResp bool
	closed  bool
}

// New builds a driver on a register window (one locality's page) and
// identifies the TPM behind it: interface registers, DID_VID/RID, then a
// probe command to tell TPM 1.2 from 2.0, then (1.2) the TPM's own timeouts.
func New(regs Registers, cfg Config) (*TPM, error) {
	if cfg.Locality < 0 || cfg.Locality >= maxLocalities {
		return nil, fmt.Errorf("%w: %d", ErrBadLocality, cfg.Locality)
	}
	if regs == nil {
		return nil, errors.New("tpmtis: nil register window")
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Microsecond
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 30 * time.Second
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 8
	}
	t := &TPM{regs: regs, clk: cfg.Clock, cfg: cfg, timeouts: probeTimeouts, durations: TPM2Durations}
	if err := t.identify(); err != nil {
		return nil, err
	}
	return t, nil
}

// Info returns what New found.
func (t *TPM) Info() Info {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info
}

// Stats counts what the driver did since New, for cost accounting and for
// spotting contention with another locality's user.
type Stats struct {
	Accesses  uint64 // register reads and writes
	Commands  uint64 // commands sent to the TPM (retries included)
	Retries   uint64 // resends after TPM_RC_RETRY/YIELDED/TPM_RETRY
	BusyWaits uint64 // locality requests queued behind another active locality
	Seizes    uint64 // localities taken from a lower one (Config.Seize)
	Aborts    uint64 // commands aborted with commandReady (timeouts, protocol errors)
}

// Stats returns the counters.
func (t *TPM) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Accesses returns the number of register reads and writes made so far.
func (t *TPM) Accesses() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats.Accesses
}

// Close stops the driver; later commands fail with ErrClosed. The locality
// is already relinquished after every command.
func (t *TPM) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.pending, t.hasResp = nil, false
	return nil
}

// Send runs one command and returns the TPM's response (go-tpm's
// transport.TPM). A response asking for a retry is resent within
// Config.MaxRetries; TPM error codes are not Go errors, as go-tpm expects.
func (t *TPM) Send(cmd []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	return t.send(cmd)
}

// Write runs p as one command and keeps the response for Read, so the driver
// is an io.ReadWriter for go-tpm's legacy tpm (TPM 1.2) package. A response
// not yet read is discarded.
func (t *TPM) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	t.pending, t.hasResp = nil, false
	rsp, err := t.send(p)
	if err != nil {
		return 0, err
	}
	t.pending, t.hasResp = rsp, true
	return len(p), nil
}

// Read returns the response to the last Write. It returns io.EOF only once
// the response is used up, never together with data: tpmutil.RunCommandRaw
// treats any error from its single Read as a failure.
func (t *TPM) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.hasResp {
		return 0, io.EOF
	}
	n := copy(p, t.pending)
	t.pending = t.pending[n:]
	if len(t.pending) == 0 {
		t.pending, t.hasResp = nil, false
	}
	return n, nil
}

func (t *TPM) send(cmd []byte) ([]byte, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, err
	}
	dur := commandDuration(t.info.Family, t.durations, cmd)
	backoff := time.Millisecond
	for attempt := 0; ; attempt++ {
		rsp, err := t.transmit(cmd, dur)
		if err != nil {
			return nil, err
		}
		rc := be32(rsp[6:10])
		if !isRetry(t.info.Family, rc) {
			return rsp, nil
		}
		if attempt >= t.cfg.MaxRetries {
			return nil, fmt.Errorf("%w: command 0x%x answered 0x%x %d times", ErrRetryExhausted, be32(cmd[6:10]), rc, attempt+1)
		}
		t.stats.Retries++
		t.clk.Sleep(backoff)
		if backoff < 128*time.Millisecond {
			backoff *= 2
		}
	}
}

func checkCommand(cmd []byte) error {
	if len(cmd) < headerSize {
		return fmt.Errorf("%w: %d bytes, shorter than a header", ErrBadCommand, len(cmd))
	}
	if len(cmd) > MaxBuffer {
		return fmt.Errorf("%w: %d bytes, larger than the %d-byte FIFO buffer", ErrBadCommand, len(cmd), MaxBuffer)
	}
	if size := be32(cmd[2:6]); size != uint32(len(cmd)) {
		return fmt.Errorf("%w: header says %d bytes, buffer has %d", ErrBadCommand, size, len(cmd))
	}
	return nil
}

// isRetry reports response codes that mean "send the same command again".
func isRetry(f Family, rc uint32) bool {
	switch f {
	case Family20:
		return rc == 0x922 || rc == 0x908 // TPM_RC_RETRY, TPM_RC_YIELDED
	case Family12:
		return rc == 0x800 // TPM_RETRY
	}
	return false
}

// transmit runs one command through the FIFO at our locality. The locality
// is requested for this command only and given back afterwards, so another
// locality's user is never locked out between our commands.
func (t *TPM) transmit(cmd []byte, dur time.Duration) (rsp []byte, err error) {
	if err := t.requestLocality(); err != nil {
		return nil, err
	}
	defer t.relinquish()
	if err := t.commandReady(); err != nil {
		return nil, err
	}
	if err := t.writeCommand(cmd); err != nil {
		t.abort()
		return nil, err
	}
	t.write8(regSts, stsGo)
	t.stats.Commands++
	if err := t.waitDataAvail(dur); err != nil {
		t.abort()
		return nil, fmt.Errorf("command 0x%x: %w", be32(cmd[6:10]), err)
	}
	rsp, err = t.readResponse()
	if err != nil {
		t.abort()
		return nil, err
	}
	// Back to ready/idle: frees the TPM's buffer for the next command and,
	// on QEMU, lets the next writer start in READY without an extra step.
	t.write8(regSts, stsCommandReady)
	return rsp, nil
}

// --- register access, counted ---

func (t *TPM) read8(off uint32) uint8 {
	t.stats.Accesses++
	return t.regs.Read8(off)
}

func (t *TPM) write8(off uint32, v uint8) {
	t.stats.Accesses++
	t.regs.Write8(off, v)
}

func (t *TPM) read32(off uint32) uint32 {
	t.stats.Accesses++
	return t.regs.Read32(off)
}

func (t *TPM) write32(off uint32, v uint32) {
	t.stats.Accesses++
	t.regs.Write32(off, v)
}

// --- locality ---

func granted(acc uint8) bool {
	return acc != 0xFF && acc&(accessRegValidSts|accessActiveLocality) == accessRegValidSts|accessActiveLocality
}

// requestLocality asks for our locality and waits timeout A. If by then our
// request is still pending (requestUse reads back 1), another locality holds
// the TPM for a command of its own; that is waited out up to BusyTimeout,
// or, with Config.Seize, the TPM is seized from it.
func (t *TPM) requestLocality() error {
	acc := t.read8(regAccess)
	if acc == 0xFF {
		return fmt.Errorf("%w: TPM_ACCESS reads 0xFF", ErrNoTPM)
	}
	if granted(acc) {
		return nil
	}
	t.write8(regAccess, accessRequestUse)
	start := t.clk.Now()
	busy, seized := false, time.Time{}
	var pause time.Duration
	for {
		acc = t.read8(regAccess)
		if granted(acc) {
			if !seized.IsZero() {
				t.stats.Seizes++
			}
			return nil
		}
		if !busy && acc != 0xFF && acc&accessRequestUse != 0 {
			busy = true // our request is queued behind another locality
			t.stats.BusyWaits++
		}
		waited := t.clk.Now().Sub(start)
		if waited >= t.timeouts.A {
			pending := acc != 0xFF && acc&(accessRegValidSts|accessRequestUse) == accessRegValidSts|accessRequestUse
			if pending && t.cfg.Seize && seized.IsZero() {
				t.write8(regAccess, accessSeize)
				seized = t.clk.Now()
			}
			seizeFailed := !seized.IsZero() && t.clk.Now().Sub(seized) >= t.timeouts.A
			if !pending || seizeFailed || waited >= t.timeouts.A+t.cfg.BusyTimeout {
				// Withdraw a request still pending so the TPM does
				// not hand us the locality later when nobody is
				// there to give it back.
				t.write8(regAccess, accessActiveLocality)
				switch {
				case seizeFailed:
					return fmt.Errorf("%w: locality %d busy and not seized within timeout A (%v): the active locality is not a lower one", ErrLocality, t.cfg.Locality, t.timeouts.A)
				case pending:
					return fmt.Errorf("%w: locality %d busy (held by another locality) for %v; if firmware left its locality active, seizing it (tpmseize=1) takes it over", ErrLocality, t.cfg.Locality, waited)
				}
				return fmt.Errorf("%w: locality %d not granted within timeout A (%v), TPM_ACCESS=0x%02x", ErrLocality, t.cfg.Locality, t.timeouts.A, acc)
			}
			// Busy: another locality is running a command,
			// which may take seconds; keep waiting.
		}
		t.pause(start, &pause)
	}
}

func (t *TPM) relinquish() {
	t.write8(regAccess, accessActiveLocality)
}

// --- status polling ---

// readSts reads TPM_STS as 32 bits: byte reads of burstCount are capped at
// 0xFF by some implementations (QEMU) and would split the FIFO traffic into
// more bursts than needed. All ones means the locality is no longer ours.
func (t *TPM) readSts() (uint32, error) {
	s := t.read32(regSts)
	if s == 0xFFFFFFFF {
		return s, fmt.Errorf("%w: TPM_STS reads all ones", ErrLocalityLost)
	}
	return s, nil
}

// maxPollInterval caps the backoff between status reads: a key generation
// may take seconds, and reading STS every 20µs for that long only costs
// bus (or hypervisor) time.
const maxPollInterval = time.Millisecond

// pause sleeps between two status reads of a wait that began at start. For
// the first 2 ms it sleeps PollInterval, so quick commands (most take tens of
// microseconds) are seen at once; after that the pause doubles up to
// maxPollInterval.
func (t *TPM) pause(start time.Time, cur *time.Duration) {
	if *cur == 0 {
		*cur = t.cfg.PollInterval
	}
	t.clk.Sleep(*cur)
	if *cur < maxPollInterval && t.clk.Now().Sub(start) > 2*maxPollInterval {
		*cur = min(2**cur, maxPollInterval)
	}
}

// waitSts polls TPM_STS until all bits of mask are set, or timeout.
func (t *TPM) waitSts(mask uint32, timeout time.Duration, what string) (uint32, error) {
	start := t.clk.Now()
	var pause time.Duration
	for {
		s, err := t.readSts()
		if err != nil {
			return s, err
		}
		if s&mask == mask {
			return s, nil
		}
		if t.clk.Now().Sub(start) >= timeout {
			return s, fmt.Errorf("%w: %s not set within %v (TPM_STS=0x%08x)", ErrTimeout, what, timeout, s)
		}
		t.pause(start, &pause)
	}
}

// burst returns a non-zero burstCount, waiting up to timeout D for one.
func (t *TPM) burst(s uint32) (int, error) {
	start := t.clk.Now()
	var pause time.Duration
	for {
		if b := int(s>>stsBurstShift) & stsBurstMask; b > 0 {
			return b, nil
		}
		if t.clk.Now().Sub(start) >= t.timeouts.D {
			return 0, fmt.Errorf("%w for timeout D (%v), TPM_STS=0x%08x", ErrBurstCount, t.timeouts.D, s)
		}
		t.pause(start, &pause)
		var err error
		if s, err = t.readSts(); err != nil {
			return 0, err
		}
	}
}

// commandReady puts the FIFO into the ready state (TIS 1.3 §11.2.7 state
// machine: idle/completion → ready), waiting timeout B.
func (t *TPM) commandReady() error {
	s, err := t.readSts()
	if err != nil {
		return err
	}
	if s&stsCommandReady != 0 {
		return nil
	}
	t.write8(regSts, stsCommandReady)
	_, err = t.waitSts(stsCommandReady, t.timeouts.B, "commandReady")
	return err
}

// abort drops whatever the FIFO holds: commandReady aborts a command being
// received or executed and discards an unread response (TIS 1.3 Table 19).
// Errors are not reported: the next command starts with commandReady again.
func (t *TPM) abort() {
	t.stats.Aborts++
	t.write8(regSts, stsCommandReady)
	_, _ = t.waitSts(stsCommandReady, t.timeouts.B, "commandReady after abort")
}

// --- FIFO transfer ---

// writeCommand writes all but the last byte in burstCount pieces, checking
// after each piece that the TPM still expects data, then the last byte, after
// which Expect must be clear: QEMU (and the spec) ignore tpmGo otherwise.
func (t *TPM) writeCommand(cmd []byte) error {
	sent := 0
	s, err := t.readSts()
	if err != nil {
		return err
	}
	for sent < len(cmd)-1 {
		b, err := t.burst(s)
		if err != nil {
			return fmt.Errorf("sending byte %d of %d: %w", sent, len(cmd), err)
		}
		n := min(b, len(cmd)-1-sent)
		t.writeFIFO(cmd[sent : sent+n])
		sent += n
		if s, err = t.waitSts(stsValid, t.timeouts.C, "stsValid"); err != nil {
			return err
		}
		if s&stsExpect == 0 {
			return fmt.Errorf("%w: TPM stopped expecting data after %d of %d bytes", ErrProtocol, sent, len(cmd))
		}
	}
	t.write8(regDataFIFO, cmd[len(cmd)-1])
	if s, err = t.waitSts(stsValid, t.timeouts.C, "stsValid"); err != nil {
		return err
	}
	if s&stsExpect != 0 {
		return fmt.Errorf("%w: TPM still expects data after all %d bytes", ErrProtocol, len(cmd))
	}
	return nil
}

// waitDataAvail waits for the command to finish executing.
func (t *TPM) waitDataAvail(dur time.Duration) error {
	_, err := t.waitSts(stsValid|stsDataAvail, dur, "dataAvail")
	return err
}

// readResponse reads the header, then exactly the number of bytes the header
// announces, each burst no larger than burstCount. The TPM must then have
// nothing left (dataAvail clear).
func (t *TPM) readResponse() ([]byte, error) {
	rsp := make([]byte, 0, headerSize)
	need := headerSize
	for len(rsp) < need {
		s, err := t.waitSts(stsValid, t.timeouts.C, "stsValid")
		if err != nil {
			return nil, err
		}
		if s&stsDataAvail == 0 {
			return nil, fmt.Errorf("%w: response ended after %d bytes, expected %d", ErrBadResponse, len(rsp), need)
		}
		b, err := t.burst(s)
		if err != nil {
			return nil, fmt.Errorf("reading byte %d of the response: %w", len(rsp), err)
		}
		n := min(b, need-len(rsp))
		rsp = t.readFIFO(rsp, n)
		if need == headerSize && len(rsp) == headerSize {
			size := be32(rsp[2:6])
			if size < headerSize {
				return nil, fmt.Errorf("%w: header says %d bytes, less than the %d-byte header", ErrBadResponse, size, headerSize)
			}
			if size > MaxBuffer {
				return nil, fmt.Errorf("%w: header says %d bytes, more than the %d-byte buffer", ErrBadResponse, size, MaxBuffer)
			}
			need = int(size)
			grown := make([]byte, headerSize, need)
			copy(grown, rsp)
			rsp = grown
		}
	}
	s, err := t.waitSts(stsValid, t.timeouts.C, "stsValid")
	if err != nil {
		return nil, err
	}
	if s&stsDataAvail != 0 {
		return nil, fmt.Errorf("%w: TPM has data left after the %d bytes its header announced", ErrBadResponse, need)
	}
	return rsp, nil
}

// writeFIFO writes b, at most one burst, to TPM_DATA_FIFO. A 4-byte access
// carries its bytes lowest address first (the register is little-endian).
func (t *TPM) writeFIFO(b []byte) {
	if t.cfg.WideFIFO {
		for len(b) >= 4 {
			t.write32(regDataFIFO, uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24)
			b = b[4:]
		}
	}
	for _, c := range b {
		t.write8(regDataFIFO, c)
	}
}

// readFIFO appends n bytes, at most one burst, read from TPM_DATA_FIFO.
func (t *TPM) readFIFO(dst []byte, n int) []byte {
	if t.cfg.WideFIFO {
		for ; n >= 4; n -= 4 {
			v := t.read32(regDataFIFO)
			dst = append(dst, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
	}
	for ; n > 0; n-- {
		dst = append(dst, t.read8(regDataFIFO))
	}
	return dst
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be16(b []byte) uint16 {
	return uint16(b[0])<<8 | uint16(b[1])
}
