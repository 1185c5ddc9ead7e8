package tpm12

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"runtime/debug"
	"time"
)

// Limits reported through TPM_CAP_PROPERTY and enforced.
const (
	// bufferMax is TPM_CAP_PROP_INPUT_BUFFER: the largest command and
	// response.
	bufferMax = 4096
	pcrCount  = 24
	// authSessionsMax is TPM_CAP_PROP_MAX_AUTHSESS.
	authSessionsMax = 16
	// keySlotsMax is TPM_CAP_PROP_MAX_KEYS.
	keySlotsMax = 20
	// randomMax is the most GetRandom returns at once: what fits in a
	// response of bufferMax bytes.
	randomMax = bufferMax - 14
)

// Command and response tags, Part 2 §6 (TPM_TAG).
const (
	tagRquCommand uint16 = 0x00C1
	tagRquAuth1   uint16 = 0x00C2
	tagRquAuth2   uint16 = 0x00C3
	tagRspCommand uint16 = 0x00C4
	tagRspAuth1   uint16 = 0x00C5
	tagRspAuth2   uint16 = 0x00C6
)

// Config configures a new TPM instance.
type Config struct {
	// Rand supplies randomness (nonces, GetRandom, the endorsement key
	// at manufacture); crypto/rand when nil.
	Rand io.Reader
	// State is a blob from (*TPM).Save. When nil the TPM is manufactured
	// as swtpm_setup --createek leaves one: an RSA-2048 endorsement key,
	// enabled, activated, no owner.
	State []byte
	// Now is the time source of the dictionary-attack lockout;
	// time.Now when nil.
	Now func() time.Time
}

// TPM is one TPM 1.2 instance. It is not safe for concurrent use.
type TPM struct {
	rand io.Reader
	// commands is commandTable, for the handlers that read it
	// (GetCapability(TPM_CAP_ORD)).
	commands map[uint32]*cmdDef

	ps persistentState

	// started is TPM_STANY_FLAGS.postInitialise inverted: Startup has
	// run since _TPM_Init.
	started bool
	// failed is the self-test failure mode (Part 1 §11.3): only
	// GetTestResult and GetCapability answer.
	failed bool
	// tested: ContinueSelfTest or SelfTestFull has run since Startup.
	tested bool

	stclear  stclearFlags
	pcr      [pcrCount]digest
	sessions map[uint32]*session
	// keys is the loaded keys by handle (loadedkey.go), volatile.
	keys map[uint32]*loadedKey
	// nextHandle numbers authorization sessions.
	nextHandle uint32
	locality   uint8

	// nvDirty records a change of durable state since the last
	// NVChanged call.
	nvDirty bool

	// ekKey is ps.EK parsed, on first use; srkPriv and srkPub ps.SRK.
	ekKey   *rsa.PrivateKey
	srkPriv *rsa.PrivateKey
	srkPub  *tpmKey

	now func() time.Time
	da  daState
	// activeCounter is TPM_STCLEAR_DATA.countID (counter.go).
	activeCounter uint32
	// nvLocks are the NV indices' bReadSTClear and bWriteSTClear (nv.go),
	// indices without either left out.
	nvLocks map[uint32]nvLock
}

// New returns a TPM in the state after _TPM_Init: it needs Startup
// before any other command.
func New(cfg Config) (*TPM, error) {
	t := &TPM{commands: commandTable, rand: cfg.Rand, now: cfg.Now, sessions: map[uint32]*session{}}
	if t.rand == nil {
		t.rand = rand.Reader
	}
	if t.now == nil {
		t.now = time.Now
	}
	if cfg.State == nil {
		if err := t.manufacture(); err != nil {
			return nil, fmt.Errorf("tpm12: manufacture: %w", err)
		}
	} else if err := t.Load(cfg.State); err != nil {
		return nil, err
	}
	t.Reset()
	return t, nil
}

// randBytes fills b with fresh random bytes.
func (t *TPM) randBytes(b []byte) {
	if _, err := io.ReadFull(t.rand, b); err != nil {
		// Without entropy the TPM can do nothing safe: failure mode.
		t.failed = true
		panic(fmt.Sprintf("tpm12: random source failed: %v", err))
	}
}

// Reset models _TPM_Init (power cycle): volatile state is lost, PCRs
// take their power-on values and Startup is required again. What
// SaveState saved stays for Startup(ST_STATE).
func (t *TPM) Reset() {
	t.started, t.failed, t.tested = false, false, false
	t.stclear = stclearFlags{}
	t.da = daState{}
	t.activeCounter = countIDNull
	t.sessions = map[uint32]*session{}
	t.keys = map[uint32]*loadedKey{}
	t.nvLocks = map[uint32]nvLock{}
	t.initPCRs()
}

// Started reports whether Startup has completed since the last Reset.
func (t *TPM) Started() bool { return t.started }

// Process executes one TPM command received at locality and returns the
// response. It never panics and never returns nil.
func (t *TPM) Process(cmd []byte, locality uint8) (rsp []byte) {
	defer func() {
		if r := recover(); r != nil {
			// Reaching here is an engine bug; the client still gets a
			// well-formed response and the instance stays usable.
			if onPanic != nil {
				onPanic(r, debug.Stack())
			}
			rsp = errorResponse(rcFail)
		}
	}()
	t.locality = locality
	return t.process(cmd)
}

// onPanic, when set (by tests), observes panics Process recovered from.
var onPanic func(r any, stack []byte)

// errorResponse is the response carrying rc: an error response has no
// parameters and no authorization area, whatever the command's tag.
func errorResponse(rc uint32) []byte {
	b := make([]byte, 10)
	binary.BigEndian.PutUint16(b[0:], tagRspCommand)
	binary.BigEndian.PutUint32(b[2:], 10)
	binary.BigEndian.PutUint32(b[6:], rc)
	return b
}

func (t *TPM) process(cmd []byte) []byte {
	if len(cmd) < 10 {
		return errorResponse(rcBadParamSize)
	}
	tag := binary.BigEndian.Uint16(cmd)
	size := binary.BigEndian.Uint32(cmd[2:])
	if size != uint32(len(cmd)) || size > bufferMax {
		return errorResponse(rcBadParamSize)
	}
	ord := binary.BigEndian.Uint32(cmd[6:])
	if ord != ordStartup && t.started {
		// Part 3 §3.3: the state SaveState preserved is valid only for
		// the Startup that follows it; any other ordinal, even one this
		// TPM lacks, discards it. Before Startup every other command is
		// refused and discards nothing, so that a driver probing the
		// TPM before its Startup(ST_STATE) does not lose the state (as
		// libtpms, whose stateSaved flag a power cycle clears).
		t.dropSaved()
	}
	def := t.commands[ord]
	if def == nil {
		// Any ordinal this TPM does not implement, including every TPM
		// 2.0 command code (their tags are checked by no row).
		return errorResponse(rcBadOrdinal)
	}
	return t.execute(def, tag, cmd[10:])
}

// NVChanged reports whether durable state changed since the previous
// call; a host stores a fresh Save blob, before it releases the
// response, when it returns true.
func (t *TPM) NVChanged() bool {
	d := t.nvDirty
	t.nvDirty = false
	return d
}

// WritesNV reports whether the command with ordinal ord may change
// durable state now, so that a host must be ready to save before running
// it: the commands marked in the table, and, after Startup, any command
// while the state SaveState preserved is pending (running it discards
// that state). Before Startup only Startup may.
func (t *TPM) WritesNV(ord uint32) bool {
	if d := t.commands[ord]; d != nil && d.nv {
		return ord == ordStartup || t.started
	}
	return t.started && t.ps.Saved != nil
}

// InitPCR sets PCR i to value, a SHA-1 digest read from the platform's
// hardware TPM (the vTPM domain's hwinitpcr=), after Startup: the guest
// sees the hardware's measurements in its own PCRs, extended from there.
func (t *TPM) InitPCR(i int, value [20]byte) error {
	if i < 0 || i >= pcrCount {
		return fmt.Errorf("tpm12: PCR %d out of range", i)
	}
	if !t.started {
		return fmt.Errorf("tpm12: PCR %d set before Startup", i)
	}
	t.pcr[i] = digest(value)
	return nil
}

// PCRValues are the values of pcrs, read outside any command (the vTPM
// domain binds them into a deep quote).
func (t *TPM) PCRValues(pcrs []uint) ([][]byte, error) {
	out := make([][]byte, len(pcrs))
	for i, p := range pcrs {
		if p >= pcrCount {
			return nil, fmt.Errorf("tpm12: PCR %d (at most %d)", p, pcrCount-1)
		}
		v := t.pcr[p]
		out[i] = v[:]
	}
	return out, nil
}

// RestorePersistent puts back the durable state of blob (from Save),
// keeping the volatile state (PCRs, sessions, STCLEAR flags, Startup):
// a host undoes with it a command whose change it could not store. The
// NV locks of indices the blob does not hold are dropped. On error
// nothing is changed.
func (t *TPM) RestorePersistent(blob []byte) error {
	ps, err := decodeState(blob)
	if err != nil {
		return err
	}
	k, err := x509.ParsePKCS1PrivateKey(ps.EK)
	if err != nil && len(ps.EK) != 0 {
		return fmt.Errorf("%w: endorsement key: %v", ErrBadState, err)
	}
	t.ps, t.ekKey = *ps, k
	t.srkPriv, t.srkPub = nil, nil
	for i := range t.nvLocks {
		if t.nvFind(i) < 0 {
			delete(t.nvLocks, i)
		}
	}
	t.nvDirty = false
	return nil
}
