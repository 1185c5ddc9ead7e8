package hwtpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// Family is the TPM specification family.
type Family int

const (
	FamilyUnknown Family = iota
	Family12             // TPM 1.2
	Family20             // TPM 2.0
)

func (f Family) String() string {
	switch f {
	case Family12:
		return "TPM 1.2"
	case Family20:
		return "TPM 2.0"
	}
	return "unknown TPM family"
}

var (
	// ErrTPM12 is returned by Open for TPM 1.2 hardware, which Open12
	// opens.
	ErrTPM12 = errors.New("hwtpm: this is TPM 1.2 hardware (Open12 opens it)")
	// ErrPCRPolicy: the sealed storage key's PCR policy is not satisfied.
	ErrPCRPolicy = errors.New("hwtpm: PCR policy not satisfied (a sealing PCR changed)")
	// ErrWrongParent: the sealed blob does not load under this TPM's
	// storage primary: another TPM, a TPM whose owner hierarchy was
	// cleared, or another srk_auth.
	ErrWrongParent = errors.New("hwtpm: sealed blob does not belong to this TPM's storage primary (other TPM, TPM cleared, or srk_auth changed)")
	// ErrNoCounter: the NV counter index is not defined (first run, or the
	// TPM was cleared).
	ErrNoCounter = errors.New("hwtpm: NV counter not defined")
	// ErrBadBlob: a sealed blob that does not decode.
	ErrBadBlob = errors.New("hwtpm: malformed sealed blob")
)

// DefaultCounterIndex is the NV index of the rollback counter: in the
// owner-defined part of the NV index range (0x01000000–0x013FFFFF in the
// TCG handle registry), "C1C0" after the manager protocol's tag 0x01C1.
const DefaultCounterIndex = 0x0100C1C0

// Config configures Open.
type Config struct {
	OwnerAuth Auth // owner_auth=: the owner hierarchy's authValue
	// SRKAuth (srk_auth=) is the storage primary's authValue. The primary
	// is re-derived from the owner seed on every boot with this value, so
	// on TPM 2.0 it does not protect the sealed key by itself; OwnerAuth
	// does, because creating the primary needs it.
	SRKAuth Auth
	// EndorsementAuth (endorsement_auth=, TPM 2.0) is the endorsement
	// hierarchy's authValue, which the group attestation keys and the EK
	// need (ak.go); empty out of the box.
	EndorsementAuth Auth
	CounterIndex    uint32 // NV index of the counter; 0 = DefaultCounterIndex (TPM 2.0)
	// EpochIndex (TPM 2.0) is the NV index of the seal epoch (epoch.go);
	// 0 = DefaultEpochIndex.
	EpochIndex uint32
	// ApprovalIndex (TPM 2.0) is the NV index of the approval counter
	// (approved.go); 0 = saa.DefaultApprovalIndex.
	ApprovalIndex uint32
	// Locality is the locality the manager's commands reach the TPM at
	// (tpmlocality=); the sealed key is released only there (TPM 2.0:
	// TPM2_PolicyLocality, TPM 1.2: TPM_Seal's localityAtRelease).
	Locality uint8
}

// TPM is the hardware TPM as the manager uses it. Methods are safe for
// concurrent use; commands are serialised.
type TPM struct {
	mu     sync.Mutex
	tr     transport.TPM
	cfg    Config
	nvName tpm2.TPM2BName // cached NV_ReadPublic name of the counter
	sleep  func(time.Duration)
	// primaryName is the storage primary's name as first derived by this
	// TPM value (or as a blob recorded it): every later derivation must
	// give the same, so a key substituted on the bus later is refused
	// before anything is encrypted to it.
	primaryName []byte
}

// probe is TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES,
// TPM_PT_FAMILY_INDICATOR, 1). A TPM 2.0 answers with a TPM 2.0 tag; a
// TPM 1.2 rejects the unknown tag with TPM_TAG_RSP_COMMAND (0x00C4).
var probe = []byte{
	0x80, 0x01, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x01, 0x7A,
	0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
}

// Detect tells the TPM families apart with one command.
func Detect(tr transport.TPM) (Family, error) {
	rsp, err := tr.Send(probe)
	if err != nil {
		return FamilyUnknown, fmt.Errorf("hwtpm: family probe: %w", err)
	}
	if len(rsp) < 10 {
		return FamilyUnknown, fmt.Errorf("hwtpm: family probe: %d-byte response", len(rsp))
	}
	switch tag := binary.BigEndian.Uint16(rsp); tag {
	case 0x8001, 0x8002:
		return Family20, nil
	case 0x00C4:
		return Family12, nil
	default:
		return FamilyUnknown, fmt.Errorf("hwtpm: family probe: unknown response tag %#04x", tag)
	}
}

// Startup sends TPM2_Startup(SU_CLEAR), or TPM_Startup(ST_CLEAR) to a
// TPM 1.2, and reports whether it was needed: on a PC the firmware starts
// the TPM, which then answers TPM_RC_INITIALIZE (TPM 1.2:
// TPM_INVALID_POSTINIT), and that is fine. Open and Open12 expect a
// started TPM.
func Startup(tr transport.TPM, f Family) (sent bool, err error) {
	cmd, name, started := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0}, "TPM2_Startup(SU_CLEAR)", uint32(0x100)
	if f == Family12 {
		cmd, name, started = []byte{0x00, 0xC1, 0, 0, 0, 12, 0, 0, 0, 0x99, 0, 1}, "TPM_Startup(ST_CLEAR)", 0x26
	}
	rsp, err := tr.Send(cmd)
	if err != nil {
		return false, fmt.Errorf("hwtpm: %s: %w", name, err)
	}
	if len(rsp) < 10 {
		return false, fmt.Errorf("hwtpm: %s: short response of %d bytes", name, len(rsp))
	}
	switch rc := binary.BigEndian.Uint32(rsp[6:]); rc {
	case 0:
		return true, nil
	case started:
		return false, nil
	default:
		return false, fmt.Errorf("hwtpm: %s answered %#x", name, rc)
	}
}

// Open detects the TPM family and returns the TPM 2.0 layer. TPM 1.2
// hardware gives ErrTPM12: Open12 opens it. The TPM must have been started (TPM2_Startup),
// which firmware does on a real platform.
func Open(tr transport.TPM, cfg Config) (*TPM, error) {
	f, err := Detect(tr)
	if err != nil {
		return nil, err
	}
	if f == Family12 {
		return nil, ErrTPM12
	}
	if cfg.CounterIndex == 0 {
		cfg.CounterIndex = DefaultCounterIndex
	}
	if cfg.EpochIndex == 0 {
		cfg.EpochIndex = DefaultEpochIndex
	}
	if cfg.ApprovalIndex == 0 {
		cfg.ApprovalIndex = saa.DefaultApprovalIndex
	}
	for _, idx := range []uint32{cfg.CounterIndex, cfg.EpochIndex, cfg.ApprovalIndex} {
		if idx>>24 != 0x01 {
			return nil, fmt.Errorf("hwtpm: NV index %#08x is not an NV index (0x01xxxxxx)", idx)
		}
	}
	if cfg.CounterIndex == cfg.EpochIndex || cfg.CounterIndex == cfg.ApprovalIndex || cfg.EpochIndex == cfg.ApprovalIndex {
		return nil, fmt.Errorf("hwtpm: the counter (%#08x), the seal epoch (%#08x) and the approval counter (%#08x) need distinct NV indices", cfg.CounterIndex, cfg.EpochIndex, cfg.ApprovalIndex)
	}
	if cfg.Locality > 4 {
		return nil, fmt.Errorf("hwtpm: locality %d (want 0..4)", cfg.Locality)
	}
	return &TPM{tr: tr, cfg: cfg, sleep: time.Sleep}, nil
}

// CounterIndex is the NV index of the rollback counter.
func (t *TPM) CounterIndex() uint32 { return t.cfg.CounterIndex }

// GetRandom returns n bytes from the TPM's RNG (TPM2_GetRandom).
func (t *TPM) GetRandom(n int) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return loopRandom(n, 64, "TPM2_GetRandom", func(want int) ([]byte, error) {
		rsp, err := tpm2.GetRandom{BytesRequested: uint16(want)}.Execute(t.tr)
		if err != nil {
			return nil, err
		}
		return rsp.RandomBytes.Buffer, nil
	})
}

// loopRandom gathers n random bytes from get, asking at most most at a
// time: a TPM answers with at most a digest's worth, or fewer than asked.
func loopRandom(n, most int, name string, get func(want int) ([]byte, error)) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("hwtpm: GetRandom(%d)", n)
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		want := min(n-len(out), most)
		b, err := get(want)
		if err != nil {
			return nil, fmt.Errorf("hwtpm: %s(%d): %w", name, want, err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("hwtpm: %s(%d) returned no bytes", name, want)
		}
		out = append(out, b[:min(len(b), want)]...)
	}
	return out, nil
}

// PCRRead reads one PCR of the SHA-1 bank, the shape of TPM 1.2's
// TPM_PcrRead that the vTPM protocol passes through (hwinitpcr=).
func (t *TPM) PCRRead(index uint32) ([20]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sha1PCR(index, "TPM2_PCR_Read(SHA-1)", func() ([]byte, error) {
		vals, err := t.readPCRs(tpm2.TPMAlgSHA1, []uint{uint(index)})
		if err != nil {
			return nil, err
		}
		return vals[0], nil
	})
}

// sha1PCR checks index, reads the PCR with read and checks it is a SHA-1
// value.
func sha1PCR(index uint32, name string, read func() ([]byte, error)) ([20]byte, error) {
	var d [20]byte
	if index > MaxPCR {
		return d, fmt.Errorf("hwtpm: PCR %d out of range 0..%d", index, MaxPCR)
	}
	v, err := read()
	if err != nil {
		return d, fmt.Errorf("hwtpm: %s(%d): %w", name, index, err)
	}
	if len(v) != len(d) {
		return d, fmt.Errorf("hwtpm: %s(%d): %d bytes, not a SHA-1 value", name, index, len(v))
	}
	copy(d[:], v)
	return d, nil
}

// PCRValues reads PCRs of the SHA-256 bank, in the order of pcrs.
func (t *TPM) PCRValues(pcrs []uint) ([][]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readPCRs(tpm2.TPMAlgSHA256, pcrs)
}

func pcrSelection(bank tpm2.TPMIAlgHash, pcrs []uint) tpm2.TPMLPCRSelection {
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: bank, PCRSelect: tpm2.PCClientCompatible.PCRs(pcrs...),
	}}}
}

// readPCRs reads pcrs (sorted ascending or not) from one bank. A TPM
// answers at most a few digests per TPM2_PCR_Read (8 on most parts), and
// says which in pcrSelectionOut, so this loops over what is left.
func (t *TPM) readPCRs(bank tpm2.TPMIAlgHash, pcrs []uint) ([][]byte, error) {
	got := map[uint][]byte{}
	left := append([]uint(nil), pcrs...)
	for len(left) > 0 {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: pcrSelection(bank, left)}.Execute(t.tr)
		if err != nil {
			return nil, fmt.Errorf("hwtpm: TPM2_PCR_Read(%v, %s): %w", bank, FormatPCRs(left), err)
		}
		var sel []uint
		for _, s := range rsp.PCRSelectionOut.PCRSelections {
			if s.Hash != bank {
				continue
			}
			for i, b := range s.PCRSelect {
				for bit := range 8 {
					if b&(1<<bit) != 0 {
						sel = append(sel, uint(i*8+bit))
					}
				}
			}
		}
		if len(sel) == 0 || len(sel) != len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("hwtpm: TPM2_PCR_Read(%v, %s): no values returned (is the bank allocated?)", bank, FormatPCRs(left))
		}
		for i, p := range sel {
			got[p] = rsp.PCRValues.Digests[i].Buffer
		}
		var rest []uint
		for _, p := range left {
			if _, ok := got[p]; !ok {
				rest = append(rest, p)
			}
		}
		if len(rest) == len(left) {
			return nil, fmt.Errorf("hwtpm: TPM2_PCR_Read(%v, %s): TPM returned none of the asked PCRs", bank, FormatPCRs(left))
		}
		left = rest
	}
	out := make([][]byte, len(pcrs))
	for i, p := range pcrs {
		out[i] = got[p]
	}
	return out, nil
}

// primaryTemplate is the storage primary: the TCG ECC P-256 SRK template.
// ECC rather than RSA-2048 because a TPM re-derives an ECC primary in
// milliseconds, where RSA key generation can take seconds on every boot.
// The template has no unique field, so CreatePrimary gives the same key
// (and name) on every call as long as the owner seed is unchanged.
var primaryTemplate = tpm2.ECCSRKTemplate

// Sessions. Every secret the manager sends or receives goes through a
// salted session (TPM 2.0 Part 1, 19.6): its session key comes from a
// salt encrypted to a TPM key, so someone who records the bus learns
// neither the key nor anything to guess authValues against offline.
// Authorisations are HMACs (never a password session carrying the
// secret), and the one parameter that is secret in each command is
// encrypted with AES-128-CFB under the session key (Part 1, 21):
// TPM2_Create's inSensitive, TPM2_CreatePrimary's inSensitive (srk_auth=),
// TPM2_Unseal's outData.
const (
	sessionHash  = tpm2.TPMAlgSHA256
	sessionNonce = 16
	sessionAES   = 128
)

// saltKey is a loaded decryption key that salts sessions.
type saltKey struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	pub    tpm2.TPMTPublic
}

// hmac is an HMAC session salted to k proving auth, with opts (parameter
// encryption).
func (k *saltKey) hmac(auth []byte, opts ...tpm2.AuthOption) tpm2.Session {
	return tpm2.HMAC(sessionHash, sessionNonce, append([]tpm2.AuthOption{tpm2.Auth(auth), tpm2.Salted(k.handle, k.pub)}, opts...)...)
}

func encryptIn() tpm2.AuthOption  { return tpm2.AESEncryption(sessionAES, tpm2.EncryptIn) }
func encryptOut() tpm2.AuthOption { return tpm2.AESEncryption(sessionAES, tpm2.EncryptOut) }

// createPrimary runs TPM2_CreatePrimary with the storage primary template
// in hierarchy h and returns the key with its name, which it computes
// from the public area itself rather than trusting the response's.
func (t *TPM) createPrimary(h tpm2.AuthHandle, what string, sens tpm2.TPM2BSensitiveCreate) (*saltKey, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: h, InSensitive: sens, InPublic: tpm2.New2B(primaryTemplate)}.Execute(t.tr)
	if err != nil {
		if h.Handle == tpm2.TPMRHOwner {
			err = ownerRefused(err)
		}
		return nil, fmt.Errorf("hwtpm: TPM2_CreatePrimary(%s): %w", what, err)
	}
	k := &saltKey{handle: rsp.ObjectHandle}
	pub, name, err := primaryPublic(rsp)
	if err == nil && (pub.Type != tpm2.TPMAlgECC || !pub.ObjectAttributes.Decrypt || !pub.ObjectAttributes.Restricted) {
		err = errors.New("not a restricted ECC decryption key")
	}
	if err != nil {
		t.flush(k.handle)
		return nil, fmt.Errorf("hwtpm: TPM2_CreatePrimary(%s): %w", what, err)
	}
	k.pub, k.name = *pub, *name
	return k, nil
}

// primaryPublic returns a TPM2_CreatePrimary answer's public area and
// the name computed from it, refusing an answer whose name is not that
// of its public area.
func primaryPublic(rsp *tpm2.CreatePrimaryResponse) (*tpm2.TPMTPublic, *tpm2.TPM2BName, error) {
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, nil, err
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(name.Buffer, rsp.Name.Buffer) {
		return nil, nil, fmt.Errorf("name %x is not its public area's (%x)", rsp.Name.Buffer, name.Buffer)
	}
	return pub, name, nil
}

func (t *TPM) flush(h tpm2.TPMHandle) { tpm2.FlushContext{FlushHandle: h}.Execute(t.tr) }

// withSalt runs fn with a fresh primary key of the null hierarchy, whose
// authValue is always empty, to salt the sessions that authorise with
// owner_auth= before the storage primary exists. The null seed changes at
// every TPM reset, so its name cannot be checked across boots: it keeps a
// recording of the bus useless, not an active interposer out (which the
// storage primary's recorded name does for the sessions that carry the
// storage key).
func (t *TPM) withSalt(fn func(k *saltKey) error) error {
	k, err := t.createPrimary(tpm2.AuthHandle{Handle: tpm2.TPMRHNull, Auth: tpm2.PasswordAuth(nil)}, "null", tpm2.TPM2BSensitiveCreate{})
	if err != nil {
		return err
	}
	defer t.flush(k.handle)
	return fn(k)
}

// ownerRefused adds what a refused owner authorisation means.
func ownerRefused(err error) error {
	if errors.Is(err, tpm2.TPMRCBadAuth) || errors.Is(err, tpm2.TPMRCAuthFail) {
		return fmt.Errorf("owner_auth refused: %w", err)
	}
	return err
}

// withPrimary creates the storage primary in the owner hierarchy, runs fn
// with it and flushes it. Nothing is left in the TPM: the manager never
// needs a persistent handle. CreatePrimary is authorised with owner_auth=
// in a session salted to a null-hierarchy key, which also encrypts the
// primary's authValue (srk_auth=). The primary's name must equal want
// (when given) and every name this TPM value derived before; after that
// it salts the sessions of fn.
func (t *TPM) withPrimary(want []byte, fn func(p *saltKey) error) error {
	var p *saltKey
	err := t.withSalt(func(null *saltKey) error {
		var err error
		p, err = t.createPrimary(tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: null.hmac(t.cfg.OwnerAuth.TPM2(), encryptIn())}, "owner",
			tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
				UserAuth: tpm2.TPM2BAuth{Buffer: t.cfg.SRKAuth.TPM2()},
			}})
		return err
	})
	if err != nil {
		return err
	}
	defer t.flush(p.handle)
	for _, w := range [][]byte{want, t.primaryName} {
		if w != nil && !bytes.Equal(w, p.name.Buffer) {
			return fmt.Errorf("%w: the storage primary's name is %x, not %x: another TPM, a TPM whose owner hierarchy was cleared, or a key substituted on the bus", ErrWrongParent, p.name.Buffer, w)
		}
	}
	t.primaryName = bytes.Clone(p.name.Buffer)
	return fn(p)
}

// parent is the storage primary as a command's parent, authorised with
// srk_auth= in a session salted to itself, with opts.
func (t *TPM) parent(p *saltKey, opts ...tpm2.AuthOption) tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.hmac(t.cfg.SRKAuth.TPM2(), opts...)}
}

// owner is the owner hierarchy authorised with owner_auth= in a session
// salted to k.
func (t *TPM) owner(k *saltKey) tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: k.hmac(t.cfg.OwnerAuth.TPM2())}
}

// PrimaryName returns the name of the storage primary (for diagnostics
// and to check that it is the same key every boot).
func (t *TPM) PrimaryName() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var name []byte
	err := t.withPrimary(nil, func(p *saltKey) error {
		name = bytes.Clone(p.name.Buffer)
		return nil
	})
	return name, err
}
