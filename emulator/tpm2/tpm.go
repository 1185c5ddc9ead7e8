package tpm2

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"time"

	gt "github.com/google/go-tpm/tpm2"
)

// Limits reported through TPM_PT_* properties and enforced.
const (
	maxCommandSize  = 4096
	maxResponseSize = 4096
	maxDigestBytes  = 64
	maxNVBuffer     = 1024
	maxInputBuffer  = 1024
	// loadedObjectsMax is the number of transient objects (keys and
	// sequences) that fit in the object slots (TPM_PT_HR_TRANSIENT_MIN).
	loadedObjectsMax = 8
	// activeSessionsMax bounds loaded plus saved sessions
	// (TPM_PT_ACTIVE_SESSIONS_MAX); loaded sessions share the same pool.
	activeSessionsMax = 64
	persistentMax     = 16
	nvIndexMax        = 64
	nvMemoryBytes     = 64 * 1024
	pcrCount          = 24
	maxSessionsPerCmd = 3
)

// Startup/Shutdown types, Part 2 §6.5 (TPM_SU).
const (
	suClear uint16 = 0x0000
	suState uint16 = 0x0001
)

// Command tags, Part 2 §6.9 (TPM_ST).
const (
	stNoSessions uint16 = 0x8001
	stSessions   uint16 = 0x8002
)

// Well-known handles, Part 2 §7.4 (TPM_RH) and §7.2 (TPM_HT).
const (
	rhOwner       uint32 = 0x40000001
	rhNull        uint32 = 0x40000007
	rsPW          uint32 = 0x40000009
	rhLockout     uint32 = 0x4000000A
	rhEndorsement uint32 = 0x4000000B
	rhPlatform    uint32 = 0x4000000C
	rhPlatformNV  uint32 = 0x4000000D

	htPCR        = 0x00
	htNVIndex    = 0x01
	htHMAC       = 0x02
	htPolicy     = 0x03
	htPermanent  = 0x40
	htTransient  = 0x80
	htPersistent = 0x81
)

// Config configures a new TPM instance.
type Config struct {
	// Rand supplies randomness (nonces, fresh seeds, keys of ordinary
	// objects); crypto/rand when nil.
	Rand io.Reader
	// State is a blob from (*TPM).Save. When nil the TPM is manufactured:
	// new random seeds, empty hierarchies.
	State []byte
	// Now is the time source for the TPM clock; time.Now when nil.
	Now func() time.Time
}

// TPM is one TPM 2.0 instance. It is not safe for concurrent use.
type TPM struct {
	rand io.Reader
	now  func() time.Time
	// commands is commandTable, for the handlers that list it.
	commands map[uint32]*cmdDef
	// call is the command in flight, paramBuf the response parameters
	// of a hand-encoded command, pcrReadOut, getRandomOut and
	// getCapabilityOut the responses of PCR_Read, GetRandom and
	// GetCapability, and fastCmds the decoded parameters of each
	// hand-decoded command (by its slot, see fastSlots): kept here
	// because the hot path would otherwise allocate them for every
	// command. None of them outlives Process.
	call             call
	paramBuf         []byte
	pcrReadOut       pcrReadResponse
	getRandomOut     getRandomResponse
	getCapabilityOut getCapabilityResponse
	fastCmds         [nFastSlots]reflect.Value

	ps persistentState

	started bool
	// orderly records that the last Shutdown was Shutdown(STATE) and
	// vol holds what it saved, so Startup(STATE) can resume.
	orderly   bool
	savedVol  *volatileState
	failed    bool
	clockBase time.Time // host time at last Startup or rate change
	// clockOffsetMS and timeOffsetMS are Clock and TPM time at clockBase.
	clockOffsetMS uint64
	timeOffsetMS  uint64
	// clockAdjust is the rate ClockRateAdjust set, in 1/clockNominal
	// steps of the nominal rate; volatile.
	clockAdjust int32

	pcr              pcrBanks
	pcrUpdateCounter uint32
	// pcrAuth is the authorization group's authValue (PCR_SetAuthValue),
	// cleared by Startup(CLEAR).
	pcrAuth []byte

	objects     map[uint32]*object
	sessions    map[uint32]*session
	nextSession uint32

	nullSeed     []byte
	contextKey   []byte
	contextSeq   uint64
	commit       commitState
	phEnable     bool
	phEnableNV   bool
	primaryCache map[[32]byte]*object
	ctxCache     map[[32]byte]*object
	locality     uint8

	// commandAuditDigest is the command audit digest, nil when none is
	// running; auditAlgChanged: the audit algorithm changed and the
	// command that changed it is not audited.
	commandAuditDigest []byte
	auditAlgChanged    bool

	// exclusiveAudit is the audit session no command has bypassed since
	// it was started or reset (Part 1 §32.7), or 0.
	exclusiveAudit uint32

	// nvDirty records a change of durable state since the last
	// NVChanged call, so hosts know when to store the state blob. nvCheck
	// asks Process to find out, after a command that may have changed
	// it, by comparing durableSum with durable, the digest of the durable
	// state as last reported.
	nvDirty bool
	nvCheck bool
	durable [32]byte

	// physicalPresence is the platform's physical-presence signal. No
	// host asserts it to a vTPM, as swtpm asserts it to none: commands
	// that need it (TPM2_PP_Commands always, those it lists when the
	// platform authorizes them, PolicyPhysicalPresence sessions) are
	// refused with TPM_RC_PP. Tests set it.
	physicalPresence bool

	// lostDA: the state was loaded from a blob written before a stop that
	// was not orderly, after DA-protected failures; the next Startup
	// counts one (persistentState.DAUsed).
	lostDA bool
}

// New returns a TPM in the power-on state: it needs Startup before any
// other command, as a real TPM does after _TPM_Init.
func New(cfg Config) (*TPM, error) {
	t := &TPM{
		commands:     commandTable,
		rand:         cfg.Rand,
		now:          cfg.Now,
		objects:      map[uint32]*object{},
		sessions:     map[uint32]*session{},
		primaryCache: map[[32]byte]*object{},
	}
	if t.rand == nil {
		t.rand = rand.Reader
	}
	if t.now == nil {
		t.now = time.Now
	}
	if cfg.State == nil {
		if err := t.manufacture(); err != nil {
			return nil, fmt.Errorf("tpm2: manufacture: %w", err)
		}
		t.durable = t.durableSum()
	} else if err := t.Load(cfg.State); err != nil {
		return nil, err
	}
	return t, nil
}

// randBytes returns n fresh random bytes.
func (t *TPM) randBytes(n int) []byte { return t.fillRandom(make([]byte, n)) }

// fillRandom fills b with fresh random bytes and returns it.
func (t *TPM) fillRandom(b []byte) []byte {
	if _, err := io.ReadFull(t.rand, b); err != nil {
		// A failing entropy source leaves the TPM unable to do anything
		// safe: enter failure mode, as Part 1 §12 requires.
		t.failed = true
		panic(fmt.Sprintf("tpm2: random source failed: %v", err))
	}
	return b
}

// Reset models _TPM_Init (power cycle): volatile state is lost unless a
// Shutdown(STATE) saved it, and Startup is required again.
func (t *TPM) Reset() {
	t.started = false
	if t.clockAdjust != 0 {
		t.clockOffsetMS, t.clockBase = t.clockMS(), t.now()
		t.clockAdjust = 0
	}
	t.objects = map[uint32]*object{}
	t.sessions = map[uint32]*session{}
	t.commandAuditDigest, t.auditAlgChanged = nil, false
	t.failed = false
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
			rsp = errorResponse(rcFailure)
		}
	}()
	t.locality = locality
	rsp = t.process(cmd)
	if t.nvCheck {
		t.nvCheck = false
		if sum := t.durableSum(); sum != t.durable {
			t.durable = sum
			t.nvDirty = true
		}
	}
	return rsp
}

// onPanic, when set (by tests), observes panics Process recovered from.
var onPanic func(r any, stack []byte)

func errorResponse(rc uint32) []byte {
	b := make([]byte, 10)
	binary.BigEndian.PutUint16(b[0:], stNoSessions)
	binary.BigEndian.PutUint32(b[2:], 10)
	binary.BigEndian.PutUint32(b[6:], rc)
	return b
}

// tpm12Response is the answer to a command with an unknown tag: a
// TPM_ST_RSP_COMMAND header carrying TPM_RC_BAD_TAG, which has the
// numeric value of TPM 1.2's TPM_BADTAG.
func tpm12Response() []byte {
	b := make([]byte, 10)
	binary.BigEndian.PutUint16(b[0:], tpm12RspCommand)
	binary.BigEndian.PutUint32(b[2:], 10)
	binary.BigEndian.PutUint32(b[6:], tpm12BadTag)
	return b
}

func (t *TPM) process(cmd []byte) []byte {
	if len(cmd) < 2 {
		return errorResponse(rcCommandSize)
	}
	// Any tag other than the two TPM 2.0 command tags, including TPM 1.2
	// commands (0x00C1–0x00C3), gets TPM_ST_RSP_COMMAND with
	// TPM_RC_BAD_TAG: Part 2 §6.9 defines that pair for exactly this case
	// because the command's family cannot be trusted, and it is what a
	// TPM 1.2 driver understands as TPM_BADTAG.
	tag := binary.BigEndian.Uint16(cmd)
	if tag != stNoSessions && tag != stSessions {
		return tpm12Response()
	}
	if len(cmd) < 10 {
		return errorResponse(rcCommandSize)
	}
	size := binary.BigEndian.Uint32(cmd[2:])
	if size != uint32(len(cmd)) || size > maxCommandSize {
		return errorResponse(rcCommandSize)
	}
	cc := binary.BigEndian.Uint32(cmd[6:])
	if t.failed {
		// Failure mode, Part 1 §12.3: only GetTestResult and
		// GetCapability work; we answer everything else with FAILURE.
		if cc != uint32(gt.TPMCCGetTestResult) && cc != uint32(gt.TPMCCGetCapability) {
			return errorResponse(rcFailure)
		}
	}
	def := commandTable[cc]
	if t.started == (cc == uint32(gt.TPMCCStartup)) {
		// Before Startup only Startup is accepted; after it, Startup is
		// refused (Part 3 §9.3.1).
		return errorResponse(rcInitialize)
	}
	if def == nil {
		return errorResponse(rcCommandCode)
	}
	c, err := t.parseCommand(def, tag, cmd[10:])
	if err != nil {
		return errorResponse(rcOf(err))
	}
	return t.execute(c)
}

// NVChanged reports whether durable state changed since the previous
// call; a host stores a fresh Save blob, before it releases the response,
// when it returns true. Only a real change counts: writing an NV index
// with the data it holds, a Shutdown, a failed password on a DA-exempt
// entity or a failed one on a DA-protected entity after the first of a
// run changes nothing durable. What is written lazily (the clock, the
// dictionary-attack counters, the orderly-shutdown state) goes with the
// next Save; a host that stops the TPM in order writes SaveAtStop.
func (t *TPM) NVChanged() bool {
	d := t.nvDirty
	t.nvDirty = false
	return d
}

// WritesNV reports whether the command with code cc may change durable
// state now (it writes NV; it is audited and starts a new audit digest,
// which counts one more in the audit counter; or an NV index may
// authorize it while a PIN index, whose pinCount every use of its
// authValue may change, is defined), so that a host must be ready to
// save before running it (a host that rations saves refuses such a
// command up front with TPM_RC_NV_RATE, leaving sessions and everything
// else untouched). The commands that change only what is written lazily
// are not among them.
func (t *TPM) WritesNV(cc uint32) bool {
	d := commandTable[cc]
	return d != nil && (d.nv && !d.lazy || t.startsAudit(cc) || nvAuthCommands[cc] && t.hasPinIndex())
}
