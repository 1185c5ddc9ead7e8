package tpm2

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/xenvtpm/xenvtpm/emulator/stateblob"
)

// persistentState is everything a TPM keeps across power cycles (Part 1
// §37 NV memory): seeds, hierarchy authorizations, NV indices,
// persistent objects, the clock and the dictionary-attack state.
type persistentState struct {
	EPS, SPS, PPS []byte

	OwnerAuth, EndorsementAuth, PlatformAuth, LockoutAuth                     []byte
	OwnerPolicy, EndorsementPolicy, PlatformPolicy, LockoutPolicy             []byte
	OwnerPolicyAlg, EndorsementPolicyAlg, PlatformPolicyAlg, LockoutPolicyAlg uint16

	ShEnable, EhEnable bool
	DisableClear       bool

	FailedTries, MaxTries, RecoveryTime, LockoutRecovery uint32
	LockoutAuthLocked                                    bool
	// DALastMS is the clock at the last DA failure or self-healing step,
	// LockoutFailMS at the last failure of lockoutAuth: kept so that a
	// lockout outlives a restart instead of healing at once.
	DALastMS, LockoutFailMS uint64
	// DAUsed: a DA-protected authorization failed since the TPM last
	// stopped in order. DA counters are written lazily (with the next
	// save), so after a stop that was not orderly some failures may be
	// lost; the next Startup then counts one, as the TCG reference
	// implementation does for a non-orderly shutdown after DA use.
	DAUsed bool
	// Stopped: the host wrote this blob as the TPM stopped (SaveAtStop),
	// so nothing after it was lost. Never set in a running TPM.
	Stopped bool
	// ClockUnsafe is TPMS_CLOCK_INFO.safe inverted (so that the zero value
	// of older blobs means safe): set when the TPM restarts from a blob
	// written before a stop that was not orderly, whose clock may be
	// behind values already reported; cleared by TPM2_Clear.
	ClockUnsafe bool

	// CounterHighWater is the largest value any NV counter has held: a
	// new counter starts from it (Part 1 §37.4.3), so deleting and
	// recreating a counter cannot roll it back.
	CounterHighWater uint64

	ClockMS      uint64
	ResetCount   uint32
	RestartCount uint32

	// AuditAlg is the command audit hash algorithm (0: never set, SHA-256),
	// AuditCommands the audited commands besides SetCommandCodeAuditStatus,
	// sorted, AuditCounter the number of audit digests started (Part 1
	// §32.3).
	AuditAlg      uint16
	AuditCommands []uint32
	AuditCounter  uint64

	// PCRPolicy and PCRPolicyAlg are the policy group's authPolicy
	// (PCR_SetAuthPolicy).
	PCRPolicy    []byte `json:",omitempty"`
	PCRPolicyAlg uint16 `json:",omitempty"`

	// PCRBanks are the allocated banks; PendingBanks, if set, replace
	// them at the next Startup (PCR_Allocate, Part 3 §22.5).
	PCRBanks     []uint16
	PendingBanks []uint16

	// PPCommands are the commands TPM2_PP_Commands made require physical
	// presence, sorted; AlgorithmSet is what TPM2_SetAlgorithmSet set.
	PPCommands   []uint32 `json:",omitempty"`
	AlgorithmSet uint32   `json:",omitempty"`

	persistent map[uint32]*object
	nv         map[uint32]*nvIndex
}

// Blob layout (all integers big-endian):
//
//	magic[8] "XVTPMST\x00" | version u32 | payloadLen u32 | payload | SHA-256(everything before)
//
// The payload is JSON: the state is small, the encoding is
// self-describing for later versions, and the checksum rejects corruption
// before any of it is interpreted.
var stateMagic = [8]byte{'X', 'V', 'T', 'P', 'M', 'S', 'T', 0}

const (
	stateVersion = 1
	// maxStateBlob bounds what Load accepts: NV memory plus persistent
	// objects cannot exceed this.
	maxStateBlob = 1 << 20
)

type stateObject struct {
	Handle    uint32
	Public    []byte
	Sensitive []byte
	Hierarchy uint32
}

type stateNV struct {
	Public []byte
	Auth   []byte
	Data   []byte
	Flags  uint32
}

type stateV1 struct {
	persistentState
	Objects []stateObject
	NV      []stateNV
	Vol     *volatileState `json:",omitempty"`
}

// volatileState is what Shutdown(STATE) preserves for Startup(STATE):
// PCRs and the PCR update counter (Part 1 §36.7). Loaded objects and
// sessions are not preserved; clients reload them from saved contexts.
type volatileState struct {
	PCR              map[uint16][][]byte
	PCRUpdateCounter uint32
	ContextKey       []byte
	ContextSeq       uint64
	PCRAuth          []byte `json:",omitempty"`
	// The two-phase ECC commit state (ecc2phase.go); absent in
	// blobs written before it existed.
	CommitNonce   []byte `json:",omitempty"`
	CommitCounter uint64 `json:",omitempty"`
	CommitArray   []byte `json:",omitempty"`
}

func (t *TPM) manufacture() error {
	t.ps = persistentState{
		EPS:             t.randBytes(64),
		SPS:             t.randBytes(64),
		PPS:             t.randBytes(64),
		ShEnable:        true,
		EhEnable:        true,
		MaxTries:        3,
		RecoveryTime:    1000,
		LockoutRecovery: 1000,
		PCRBanks:        []uint16{uint16(gt.TPMAlgSHA1), uint16(gt.TPMAlgSHA256), uint16(gt.TPMAlgSHA384)},
		persistent:      map[uint32]*object{},
		nv:              map[uint32]*nvIndex{},
	}
	return nil
}

// Save serializes the persistent state (and, after Shutdown(STATE), the
// saved volatile state) into a self-checking blob: the durable state and
// the state written lazily (the clock, dictionary-attack counters, the
// orderly-shutdown state) as they are now.
func (t *TPM) Save() ([]byte, error) {
	return encodeState(t.snapshot())
}

// SaveAtStop is Save for a host that stops the TPM and will not run
// another command on it: the blob records that nothing was left unsaved,
// so the next start neither counts a dictionary-attack failure for
// failures that might have been lost nor marks the clock unsafe.
func (t *TPM) SaveAtStop() ([]byte, error) {
	st := t.snapshot()
	st.Stopped, st.DAUsed = true, false
	return encodeState(st)
}

// snapshot is the state as Save writes it.
func (t *TPM) snapshot() *stateV1 {
	st := &stateV1{persistentState: t.ps}
	st.ClockMS = t.clockMS()
	handles := make([]uint32, 0, len(t.ps.persistent))
	for h := range t.ps.persistent {
		handles = append(handles, h)
	}
	sort.Slice(handles, func(i, j int) bool { return handles[i] < handles[j] })
	for _, h := range handles {
		o := t.ps.persistent[h]
		st.Objects = append(st.Objects, stateObject{Handle: h, Public: gt.Marshal(&o.pub), Sensitive: gt.Marshal(&o.sens), Hierarchy: o.hierarchy})
	}
	handles = handles[:0]
	for h := range t.ps.nv {
		handles = append(handles, h)
	}
	sort.Slice(handles, func(i, j int) bool { return handles[i] < handles[j] })
	for _, h := range handles {
		n := t.ps.nv[h]
		st.NV = append(st.NV, stateNV{Public: gt.Marshal(&n.pub), Auth: n.auth, Data: n.data, Flags: n.flags})
	}
	if t.orderly {
		st.Vol = t.savedVol
	}
	return st
}

func encodeState(st *stateV1) ([]byte, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("tpm2: encode state: %w", err)
	}
	return stateblob.Seal(stateMagic, stateVersion, payload), nil
}

// ErrBadState is wrapped by every error Load returns for a blob that is
// not a complete, intact state of a supported version.
var ErrBadState = errors.New("tpm2: bad state blob")

// Load replaces the TPM's persistent state with blob. The TPM is left
// needing Startup. On error nothing is changed.
//
// A blob not written by SaveAtStop comes from a TPM that stopped without
// saving what it kept lazily: its clock may have reported values beyond
// the blob's, so the clock is marked unsafe, and if a DA-protected
// authorization had failed in that run the next Startup counts one
// failure for those that may be lost.
func (t *TPM) Load(blob []byte) error {
	ps, vol, err := decodeState(blob)
	if err != nil {
		return err
	}
	t.ps = *ps
	t.savedVol = vol
	t.orderly = vol != nil
	t.lostDA = ps.DAUsed && !ps.Stopped
	if !ps.Stopped {
		t.ps.ClockUnsafe = true
	}
	t.ps.DAUsed, t.ps.Stopped = false, false
	t.durable = t.durableSum()
	t.nvDirty, t.nvCheck = false, false
	t.Reset()
	t.clockBase = t.now()
	t.clockOffsetMS = t.ps.ClockMS
	return nil
}

// RestorePersistent puts back the durable state of blob (from Save) and
// keeps the rest as it is now: the volatile state (PCRs, sessions, loaded
// objects) and what is written lazily (the clock, the dictionary-attack
// counters, the orderly-shutdown state). A host that could not store a
// command's change undoes it this way, so that the command it then fails
// has had no effect, as a TPM's TPM_RC_NV_UNAVAILABLE promises; a failed
// authorization stays counted, so a refused save never gives a password
// guess for free. On error nothing is changed.
func (t *TPM) RestorePersistent(blob []byte) error {
	ps, _, err := decodeState(blob)
	if err != nil {
		return err
	}
	lazy := t.ps
	t.ps = *ps
	t.ps.setLazy(&lazy)
	t.ps.Stopped = false
	t.durable = t.durableSum()
	t.nvDirty, t.nvCheck = false, false
	return nil
}

// setLazy copies the fields written lazily, not before a command's
// response, from o.
func (ps *persistentState) setLazy(o *persistentState) {
	ps.FailedTries, ps.LockoutAuthLocked = o.FailedTries, o.LockoutAuthLocked
	ps.DALastMS, ps.LockoutFailMS = o.DALastMS, o.LockoutFailMS
	ps.ClockMS = o.ClockMS
}

// durableSum is a digest of the durable state: everything Save writes
// except what is written lazily. A command changed durable state, and
// must be saved before its response is released, exactly when it
// changed this digest.
func (t *TPM) durableSum() [sha256.Size]byte {
	st := t.snapshot()
	st.persistentState.setLazy(&persistentState{})
	st.Vol = nil
	payload, err := json.Marshal(st)
	if err != nil {
		// Save would fail the same way; a digest no state has makes the
		// host try it and report the error.
		return [sha256.Size]byte{0xFF}
	}
	return sha256.Sum256(payload)
}

func decodeState(blob []byte) (*persistentState, *volatileState, error) {
	payload, err := stateblob.Open(stateMagic, stateVersion, maxStateBlob, blob)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	var st stateV1
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	ps := st.persistentState
	if len(ps.EPS) == 0 || len(ps.SPS) == 0 || len(ps.PPS) == 0 {
		return nil, nil, fmt.Errorf("%w: missing seeds", ErrBadState)
	}
	for _, b := range ps.PCRBanks {
		if _, ok := pcrAlgs[gt.TPMAlgID(b)]; !ok {
			return nil, nil, fmt.Errorf("%w: PCR bank 0x%x", ErrBadState, b)
		}
	}
	ps.persistent = map[uint32]*object{}
	for _, so := range st.Objects {
		if so.Handle>>24 != htPersistent {
			return nil, nil, fmt.Errorf("%w: object handle 0x%08x", ErrBadState, so.Handle)
		}
		o, err := objectFromBytes(so.Public, so.Sensitive, so.Hierarchy)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: object 0x%08x: %v", ErrBadState, so.Handle, err)
		}
		ps.persistent[so.Handle] = o
	}
	ps.nv = map[uint32]*nvIndex{}
	for _, sn := range st.NV {
		nv, err := nvFromState(sn)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: NV: %v", ErrBadState, err)
		}
		ps.nv[uint32(nv.pub.NVIndex)] = nv
	}
	if st.Vol != nil {
		for alg, vals := range st.Vol.PCR {
			a, ok := pcrAlgs[gt.TPMAlgID(alg)]
			if !ok || len(vals) != pcrCount {
				return nil, nil, fmt.Errorf("%w: saved PCR bank 0x%x", ErrBadState, alg)
			}
			for _, v := range vals {
				if len(v) != a.Size() {
					return nil, nil, fmt.Errorf("%w: saved PCR size", ErrBadState)
				}
			}
		}
	}
	return &ps, st.Vol, nil
}

// clockMS is TPM clock in milliseconds: persisted offset plus host time
// since the last Startup. It only moves forward (Part 1 §36.3).
func (t *TPM) clockMS() uint64 {
	if t.clockBase.IsZero() {
		return t.clockOffsetMS
	}
	return t.clockOffsetMS + t.sinceClockBase()
}
