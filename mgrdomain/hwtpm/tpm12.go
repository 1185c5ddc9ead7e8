package hwtpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2/transport"
)

// TPM 1.2 return codes this package tells apart (TPM 1.2 Part 2, 16).
const (
	rc12AuthFail          = 0x01 // TPM_AUTHFAIL
	rc12NoSRK             = 0x12 // TPM_NOSRK
	rc12NotSealedBlob     = 0x13 // TPM_NOTSEALED_BLOB
	rc12WrongPCRVal       = 0x18 // TPM_WRONGPCRVAL
	rc12DecryptError      = 0x21 // TPM_DECRYPT_ERROR
	rc12BadDataSize       = 0x2B // TPM_BAD_DATASIZE
	rc12BadLocality       = 0x3D // TPM_BAD_LOCALITY
	rc12BadCounter        = 0x45 // TPM_BAD_COUNTER
	rc12DefendLockRunning = 0x803

	cap12Property = 0x05  // TPM_CAP_PROPERTY
	prop12Owner   = 0x111 // TPM_CAP_PROP_OWNER
)

var (
	// ErrLocality: the sealed key is released only at another locality
	// than the one the manager's commands reach the TPM at.
	ErrLocality = errors.New("hwtpm: the sealed key is released only at another TPM locality")
	// ErrNotReady: a TPM 1.2 that is disabled, deactivated or has no
	// owner. The manager does not change any of these: they are the host
	// owner's decisions (firmware setup, TPM_TakeOwnership).
	ErrNotReady = errors.New("hwtpm: TPM 1.2 not ready for the manager")
)

// rc12Error is a TPM 1.2 return code from one of this package's own
// commands.
type rc12Error struct {
	cmd string
	rc  uint32
}

func (e rc12Error) Error() string {
	return fmt.Sprintf("hwtpm: %s: TPM 1.2 return code %#x", e.cmd, e.rc)
}

// rc12 finds the TPM 1.2 return code in err: ours, or go-tpm's legacy
// package's, whose error type is unexported but is the code as a uint32.
func rc12(err error) (uint32, bool) {
	var own rc12Error
	if errors.As(err, &own) {
		return own.rc, true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		if v.Kind() == reflect.Uint32 && v.Type().PkgPath() == "github.com/google/go-tpm/tpm" {
			return uint32(v.Uint()), true
		}
	}
	return 0, false
}

func isRC12(err error, rc uint32) bool {
	got, ok := rc12(err)
	return ok && got == rc
}

// lockoutHint turns the dictionary-attack defence into advice.
func lockoutHint(err error) string {
	if isRC12(err, rc12DefendLockRunning) {
		return " (the TPM's dictionary-attack defence is running after wrong passwords: wait, or reset it with the owner password)"
	}
	return ""
}

// TPM12 is TPM 1.2 hardware as the manager uses it; it has the methods of
// TPM with the TPM 1.2 commands behind them:
//
//   - Seal / Unseal: TPM_Seal under the SRK (key handle 0x40000000, with
//     srk_auth=) to a selection of PCRs at their current values and to the
//     manager's locality (Config.Locality) as the only locality of
//     release, and TPM_Unseal. go-tpm's legacy package runs both.
//   - The rollback counter is a TPM 1.2 monotonic counter labelled
//     "XVTM" (TPM_CreateCounter with owner_auth=, TPM_IncrementCounter,
//     TPM_ReadCounter; see counter12.go).
//   - GetRandom (TPM_GetRandom) and PCRRead (TPM_PcrRead).
//
// The TPM must be enabled, activated and owned: the manager takes no
// ownership and changes no flag.
type TPM12 struct {
	mu      sync.Mutex
	rw      io.ReadWriter
	cfg     Config
	countID uint32 // the rollback counter, once found or created
	counted bool   // countID is valid
}

// Open12 opens TPM 1.2 hardware: it checks the family and that the TPM is
// enabled, activated and owned (ErrNotReady otherwise, saying which).
func Open12(tr transport.TPM, cfg Config) (*TPM12, error) {
	f, err := Detect(tr)
	if err != nil {
		return nil, err
	}
	if f != Family12 {
		return nil, fmt.Errorf("hwtpm: Open12 on a %v", f)
	}
	if cfg.Locality > 4 {
		return nil, fmt.Errorf("hwtpm: locality %d (want 0..4)", cfg.Locality)
	}
	t := &TPM12{rw: &sendRW{tr: tr}, cfg: cfg}
	flags, err := tpm.GetPermanentFlags(t.rw)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: TPM_GetCapability(permanent flags): %w", err)
	}
	switch {
	case flags.Disable:
		return nil, fmt.Errorf("%w: it is disabled (enable it in the firmware setup)", ErrNotReady)
	case flags.Deactivated:
		return nil, fmt.Errorf("%w: it is deactivated (activate it in the firmware setup)", ErrNotReady)
	}
	// TPM_PERMANENT_FLAGS' "ownership" only says an owner may be
	// installed; whether one is, is the TPM_CAP_PROP_OWNER property.
	owned, err := tpm.GetCapabilityRaw(t.rw, cap12Property, prop12Owner)
	if err != nil || len(owned) != 1 {
		return nil, fmt.Errorf("hwtpm: TPM_GetCapability(TPM_CAP_PROP_OWNER): % x, %v", owned, err)
	}
	if owned[0] == 0 {
		return nil, fmt.Errorf("%w: it has no owner (take ownership first, e.g. tpm_takeownership, with the secrets given as owner_auth= and srk_auth=)", ErrNotReady)
	}
	return t, nil
}

// sendRW adapts a transport.TPM (one command, one response) to the
// io.ReadWriter go-tpm's TPM 1.2 package uses: Write sends, Read returns
// the response.
type sendRW struct {
	tr  transport.TPM
	rsp []byte
}

func (s *sendRW) Write(cmd []byte) (int, error) {
	rsp, err := s.tr.Send(cmd)
	if err != nil {
		return 0, err
	}
	s.rsp = rsp
	return len(cmd), nil
}

func (s *sendRW) Read(p []byte) (int, error) {
	if s.rsp == nil {
		return 0, io.EOF
	}
	if len(p) < len(s.rsp) {
		return 0, fmt.Errorf("hwtpm: %d-byte TPM response for a %d-byte buffer", len(s.rsp), len(p))
	}
	n := copy(p, s.rsp)
	s.rsp = nil
	return n, nil
}

// GetRandom returns n bytes of TPM_GetRandom.
func (t *TPM12) GetRandom(n int) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return loopRandom(n, 128, "TPM_GetRandom", func(want int) ([]byte, error) {
		return tpm.GetRandom(t.rw, uint32(want))
	})
}

// PCRRead is TPM_PcrRead.
func (t *TPM12) PCRRead(index uint32) ([20]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sha1PCR(index, "TPM_PcrRead", func() ([]byte, error) { return tpm.ReadPCR(t.rw, index) })
}

func (t *TPM12) readPCRs(pcrs []uint) ([][]byte, error) {
	out := make([][]byte, len(pcrs))
	for i, p := range pcrs {
		v, err := tpm.ReadPCR(t.rw, uint32(p))
		if err != nil {
			return nil, fmt.Errorf("hwtpm: TPM_PcrRead(%d): %w", p, err)
		}
		out[i] = v
	}
	return out, nil
}

// Seal seals key (1..MaxKey bytes) with TPM_Seal under the SRK: released
// only with pcrs (SHA-1 bank, none for no PCR binding) at their current
// values and only at Config.Locality. Costs: an OSAP session and
// TPM_Seal; no NV write.
func (t *TPM12) Seal(key []byte, pcrs []uint) (*SealedBlob, error) {
	pcrs, err := checkSeal(key, pcrs)
	if err != nil {
		return nil, err
	}
	ints := make([]int, len(pcrs))
	for i, p := range pcrs {
		ints[i] = int(p)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	vals, err := t.readPCRs(pcrs)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: seal: %w", err)
	}
	srk := t.cfg.SRKAuth.TPM12()
	sealed, err := tpm.Seal(t.rw, tpm.Locality(1<<t.cfg.Locality), ints, key, srk[:])
	if err != nil {
		switch {
		case isRC12(err, rc12AuthFail):
			return nil, fmt.Errorf("hwtpm: seal: TPM_Seal: srk_auth refused: %w", err)
		case isRC12(err, rc12NoSRK):
			return nil, fmt.Errorf("%w: TPM_Seal: the TPM has no SRK (no owner): %w", ErrNotReady, err)
		}
		return nil, fmt.Errorf("hwtpm: seal: TPM_Seal: %w%s", err, lockoutHint(err))
	}
	return &SealedBlob{Family: Family12, PCRs: pcrs, PCRValues: vals, Locality: t.cfg.Locality, StoredData: sealed}, nil
}

// Reseal is Seal: TPM_Seal cannot bind a blob to anything that a later
// seal could move, so on TPM 1.2 a copy of the disk taken before a reseal
// still unseals under its old selection (docs/manager-storage.md, 12.9).
func (t *TPM12) Reseal(key []byte, pcrs []uint) (*SealedBlob, error) { return t.Seal(key, pcrs) }

// Retire does nothing on TPM 1.2, for the reason Reseal gives.
func (t *TPM12) Retire(*SealedBlob) error { return nil }

// Unseal is TPM_Unseal of a blob Seal made. A PCR mismatch is
// ErrPCRPolicy naming the PCRs that changed; the wrong locality is
// ErrLocality; a blob of another TPM or SRK, a tampered blob or another
// srk_auth is ErrWrongParent (TPM 1.2 does not tell these apart).
func (t *TPM12) Unseal(b *SealedBlob) ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil", ErrBadBlob)
	}
	if b.Family != Family12 {
		return nil, fmt.Errorf("%w: the key was sealed by a TPM 2.0, this is a TPM 1.2", ErrWrongParent)
	}
	if err := checkStoredData(b.StoredData); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	srk := t.cfg.SRKAuth.TPM12()
	key, err := tpm.Unseal(t.rw, b.StoredData, srk[:])
	if err == nil {
		return key, nil
	}
	switch rc, _ := rc12(err); rc {
	case rc12WrongPCRVal:
		return nil, fmt.Errorf("%w%s: TPM_Unseal: %w", ErrPCRPolicy, t.changedPCRs(b), err)
	case rc12BadLocality:
		return nil, fmt.Errorf("%w: sealed for release at locality %d, the manager uses locality %d (tpmlocality=): TPM_Unseal: %w", ErrLocality, b.Locality, t.cfg.Locality, err)
	case rc12AuthFail, rc12NotSealedBlob, rc12DecryptError, rc12BadDataSize:
		return nil, fmt.Errorf("%w: TPM_Unseal: %w", ErrWrongParent, err)
	case rc12NoSRK:
		return nil, fmt.Errorf("%w: TPM_Unseal: the TPM has no SRK (no owner): %w", ErrNotReady, err)
	}
	return nil, fmt.Errorf("hwtpm: unseal: TPM_Unseal: %w%s", err, lockoutHint(err))
}

func (t *TPM12) changedPCRs(b *SealedBlob) string {
	if len(b.PCRValues) != len(b.PCRs) {
		// SealComposite's blobs know only the composite.
		return t.describeComposite(b)
	}
	now, err := t.readPCRs(b.PCRs)
	if err != nil {
		return ""
	}
	return describeChanged(b, now)
}

// checkStoredData checks the frame of a TPM_STORED_DATA12 (TPM 1.2
// Part 2, 9.3): tag 0x0016, entity type, u32-sized sealInfo and encData,
// nothing after. The TPM checks the rest.
func checkStoredData(p []byte) error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: TPM_STORED_DATA12: %s", ErrBadBlob, fmt.Sprintf(f, a...))
	}
	if len(p) < 12 {
		return bad("%d bytes", len(p))
	}
	if tag := binary.BigEndian.Uint16(p); tag != 0x0016 {
		return bad("tag %#04x", tag)
	}
	rest := p[4:]
	for _, name := range []string{"sealInfo", "encData"} {
		if len(rest) < 4 {
			return bad("%s size missing", name)
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return bad("%s of %d bytes in %d", name, n, len(rest)-4)
		}
		rest = rest[4+n:]
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	return nil
}
