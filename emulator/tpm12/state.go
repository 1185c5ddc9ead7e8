package tpm12

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xenvtpm/xenvtpm/emulator/stateblob"
)

// persistentState is everything the TPM keeps across power cycles (Part
// 2 §7.4 TPM_PERMANENT_DATA and §7.1 TPM_PERMANENT_FLAGS, as far as the
// implemented commands use them), plus what SaveState preserved.
type persistentState struct {
	Flags permanentFlags
	// EK is the endorsement key, PKCS #1 DER.
	EK []byte
	// Owned is TPM_PERMANENT_DATA.ownerInstalled; OwnerAuth the owner's
	// authData.
	Owned     bool
	OwnerAuth digest
	// SRK is the storage root key and TPMProof the TPM's secret that
	// binds its blobs to it (TPM_PERMANENT_DATA.tpmProof), both made by
	// TakeOwnership; blobs written before ownership existed have
	// neither.
	SRK      *srk `json:",omitempty"`
	TPMProof digest
	// NV is the defined NV indices; NoOwnerNVWrite counts the NV writes
	// made without an owner (TPM_PERMANENT_DATA.noOwnerNVWrite).
	NV             []*nvArea `json:",omitempty"`
	NoOwnerNVWrite uint32    `json:",omitempty"`
	// Counters is TPM_PERMANENT_DATA.monotonicCounter (counter.go).
	Counters []counter `json:",omitempty"`
	// Saved is what SaveState preserved for Startup(ST_STATE), nil when
	// nothing is.
	Saved *savedState `json:",omitempty"`
}

// Blob layout (all integers big-endian):
//
//	magic[8] "XVTPM12\x00" | version u32 | payloadLen u32 | payload | SHA-256(everything before)
//
// The same frame as the TPM 2.0 engine's blob, whose magic is
// "XVTPMST\x00": the first eight bytes name the family, so neither
// engine takes the other's state, and a host can tell which engine a
// stored blob belongs to before it starts one. The payload is JSON.
var (
	stateMagic = [8]byte{'X', 'V', 'T', 'P', 'M', '1', '2', 0}
	// tpm2Magic is the TPM 2.0 engine's magic (emulator/tpm2/state.go),
	// recognized to refuse such a blob with a clear error.
	tpm2Magic = [8]byte{'X', 'V', 'T', 'P', 'M', 'S', 'T', 0}
)

const (
	stateVersion = 1
	maxStateBlob = 1 << 20
)

// ErrBadState is wrapped by every error Load returns for a blob that is
// not a complete, intact TPM 1.2 state of a supported version.
var ErrBadState = errors.New("tpm12: bad state blob")

// ErrOtherFamily is wrapped by the error Load returns for a TPM 2.0
// state blob.
var ErrOtherFamily = errors.New("tpm12: state blob is a TPM 2.0 state")

// manufacture makes the TPM as swtpm_setup --createek leaves one: an
// RSA-2048 endorsement key, enabled, activated, no owner, readPubek set,
// CEKPUsed (the key was made by TPM_CreateEndorsementKeyPair, so
// enableRevokeEK is clear) and physicalPresenceCMDEnable set, neither
// lifetime-locked.
func (t *TPM) manufacture() error {
	k, err := rsa.GenerateKey(t.rand, ekBits)
	if err != nil {
		return err
	}
	t.ps = persistentState{
		EK: x509.MarshalPKCS1PrivateKey(k),
		Flags: permanentFlags{
			Ownership:                 true,
			ReadPubek:                 true,
			AllowMaintenance:          true,
			CEKPUsed:                  true,
			PhysicalPresenceCMDEnable: true,
		},
	}
	t.ekKey = k
	return nil
}

// Save serializes the persistent state into a self-checking blob.
func (t *TPM) Save() ([]byte, error) {
	payload, err := json.Marshal(&t.ps)
	if err != nil {
		return nil, fmt.Errorf("tpm12: encode state: %w", err)
	}
	return stateblob.Seal(stateMagic, stateVersion, payload), nil
}

// Load replaces the TPM's persistent state with blob and leaves the TPM
// needing Startup. On error nothing is changed.
func (t *TPM) Load(blob []byte) error {
	ps, err := decodeState(blob)
	if err != nil {
		return err
	}
	var k *rsa.PrivateKey
	if len(ps.EK) != 0 {
		if k, err = x509.ParsePKCS1PrivateKey(ps.EK); err != nil {
			return fmt.Errorf("%w: endorsement key: %v", ErrBadState, err)
		}
		if k.N.BitLen() != ekBits {
			return fmt.Errorf("%w: endorsement key of %d bits", ErrBadState, k.N.BitLen())
		}
	}
	t.ps, t.ekKey = *ps, k
	t.srkPriv, t.srkPub = nil, nil
	t.nvDirty = false
	t.Reset()
	return nil
}

func decodeState(blob []byte) (*persistentState, error) {
	if len(blob) >= 8 && bytes.Equal(blob[:8], tpm2Magic[:]) {
		return nil, ErrOtherFamily
	}
	payload, err := stateblob.Open(stateMagic, stateVersion, maxStateBlob, blob)
	if errors.Is(err, stateblob.ErrMagic) {
		return nil, fmt.Errorf("%w: not a TPM 1.2 state", ErrBadState)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	ps := &persistentState{}
	if err := json.Unmarshal(payload, ps); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if ps.Saved != nil && len(ps.Saved.PCR) != pcrCount {
		return nil, fmt.Errorf("%w: saved state of %d PCRs", ErrBadState, len(ps.Saved.PCR))
	}
	if ps.Owned != (ps.SRK != nil) {
		return nil, fmt.Errorf("%w: owner installed %v without SRK", ErrBadState, ps.Owned)
	}
	if ps.SRK != nil {
		if _, err := x509.ParsePKCS1PrivateKey(ps.SRK.Key); err != nil {
			return nil, fmt.Errorf("%w: SRK: %v", ErrBadState, err)
		}
		var pub tpmKey
		r := &reader{b: ps.SRK.Pub}
		pub.unmarshal(r)
		if r.short || r.err != nil || len(r.b) != 0 {
			return nil, fmt.Errorf("%w: SRK public part", ErrBadState)
		}
	}
	if len(ps.Counters) > countersMax {
		return nil, fmt.Errorf("%w: %d counters", ErrBadState, len(ps.Counters))
	}
	used := 0
	for _, a := range ps.NV {
		if a == nil || len(a.Data) == 0 {
			return nil, fmt.Errorf("%w: empty NV index", ErrBadState)
		}
		used += len(a.Data)
	}
	if used > nvSpaceMax {
		return nil, fmt.Errorf("%w: %d bytes of NV", ErrBadState, used)
	}
	if ps.Saved != nil {
		if _, err := restoreKeys(ps.Saved.Keys); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadState, err)
		}
	}
	for _, p := range ps.Saved.pcrs() {
		if len(p) != digestSize {
			return nil, fmt.Errorf("%w: saved PCR of %d bytes", ErrBadState, len(p))
		}
	}
	return ps, nil
}

// pcrs is the saved PCR values, none when nothing is saved.
func (s *savedState) pcrs() [][]byte {
	if s == nil {
		return nil
	}
	return s.PCR
}
