package hwtpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// SealedBlob is a sealed storage key as kept on the manager's disk, for
// either TPM family, with, for diagnostics, the PCR values it was sealed
// to (SHA-256 on TPM 2.0, SHA-1 on TPM 1.2).
type SealedBlob struct {
	// Family is the TPM family that sealed it; the zero value means
	// TPM 2.0, the only family of version-1 blobs.
	Family    Family
	PCRs      []uint   // the PCR selection; empty: no PCR binding
	PCRValues [][]byte // the values of PCRs at sealing, same order

	// TPM 2.0: the sealed object, loadable under the storage primary.
	Public  []byte // TPM2B_PUBLIC, marshalled
	Private []byte // TPM2B_PRIVATE, marshalled

	// TPM 1.2: TPM_Seal's output under the SRK, released only at
	// Locality (0–4) and with PCRs at the sealed values.
	Locality   uint8
	StoredData []byte // TPM_STORED_DATA12, marshalled
}

// MaxKey is the largest secret Seal accepts (TPM2B_SENSITIVE_DATA holds
// at least 128 bytes on every TPM).
const MaxKey = 128

const (
	blobMagic     = "XVSK"
	blobVersion   = 1 // TPM 2.0
	blobVersion12 = 2 // TPM 1.2
	// MaxBlobSize bounds an encoded blob; real ones are ~1 KiB at most.
	MaxBlobSize = 3072
)

// Marshal encodes the blob, big-endian. Version 1 (TPM 2.0): "XVSK" ‖
// u16 1 ‖ u32 PCR bitmap ‖ u8 count ‖ count × (u8 size ‖ value) ‖ u16
// size ‖ public ‖ u16 size ‖ private. Version 2 (TPM 1.2): the same up to
// the PCR values, then u8 locality ‖ u16 size ‖ TPM_STORED_DATA12.
func (b *SealedBlob) Marshal() []byte {
	var w bytes.Buffer
	w.WriteString(blobMagic)
	version := uint16(blobVersion)
	if b.Family == Family12 {
		version = blobVersion12
	}
	w.Write(binary.BigEndian.AppendUint16(nil, version))
	var mask uint32
	for _, p := range b.PCRs {
		mask |= 1 << p
	}
	w.Write(binary.BigEndian.AppendUint32(nil, mask))
	w.WriteByte(byte(len(b.PCRValues)))
	for _, v := range b.PCRValues {
		w.WriteByte(byte(len(v)))
		w.Write(v)
	}
	areas := [][]byte{b.Public, b.Private}
	if b.Family == Family12 {
		w.WriteByte(b.Locality)
		areas = [][]byte{b.StoredData}
	}
	for _, a := range areas {
		w.Write(binary.BigEndian.AppendUint16(nil, uint16(len(a))))
		w.Write(a)
	}
	return w.Bytes()
}

// UnmarshalSealedBlob decodes what Marshal wrote. Errors wrap ErrBadBlob.
func UnmarshalSealedBlob(p []byte) (*SealedBlob, error) {
	bad := func(f string, a ...any) (*SealedBlob, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadBlob, fmt.Sprintf(f, a...))
	}
	if len(p) > MaxBlobSize {
		return bad("%d bytes", len(p))
	}
	r := bytes.NewReader(p)
	var hdr struct {
		Magic   [4]byte
		Version uint16
		Mask    uint32
		N       uint8
	}
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return bad("header: %v", err)
	}
	if string(hdr.Magic[:]) != blobMagic || (hdr.Version != blobVersion && hdr.Version != blobVersion12) {
		return bad("magic %q version %d", hdr.Magic[:], hdr.Version)
	}
	if hdr.Mask>>(MaxPCR+1) != 0 {
		return bad("PCR bitmap %#x beyond PCR %d", hdr.Mask, MaxPCR)
	}
	b := &SealedBlob{Family: Family20, PCRs: []uint{}}
	for i := range uint(MaxPCR + 1) {
		if hdr.Mask&(1<<i) != 0 {
			b.PCRs = append(b.PCRs, i)
		}
	}
	if int(hdr.N) != 0 && int(hdr.N) != len(b.PCRs) {
		return bad("%d PCR values for %d PCRs", hdr.N, len(b.PCRs))
	}
	// readN is only called with n ≤ r.Len(), checked by the caller.
	readN := func(n int) []byte {
		v := make([]byte, n)
		io.ReadFull(r, v)
		return v
	}
	for range hdr.N {
		n, err := r.ReadByte()
		if err != nil || int(n) > r.Len() {
			return bad("truncated PCR value")
		}
		v := readN(int(n))
		b.PCRValues = append(b.PCRValues, v)
	}
	areas := []*[]byte{&b.Public, &b.Private}
	if hdr.Version == blobVersion12 {
		b.Family = Family12
		loc, err := r.ReadByte()
		if err != nil || loc > 4 {
			return bad("locality missing or beyond 4")
		}
		b.Locality = loc
		areas = []*[]byte{&b.StoredData}
	}
	for _, dst := range areas {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil || int(n) > r.Len() || n == 0 {
			return bad("truncated or empty object area")
		}
		*dst = readN(int(n))
	}
	if r.Len() != 0 {
		return bad("%d trailing bytes", r.Len())
	}
	if b.Family == Family12 {
		if err := checkStoredData(b.StoredData); err != nil {
			return nil, err
		}
		return b, nil
	}
	if _, _, err := b.areas(); err != nil {
		return nil, err
	}
	return b, nil
}

// areas decodes the object areas with go-tpm, which must not panic on
// hostile disk contents.
func (b *SealedBlob) areas() (pub *tpm2.TPM2BPublic, priv *tpm2.TPM2BPrivate, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: object areas: %v", ErrBadBlob, r)
		}
	}()
	if pub, err = tpm2.Unmarshal[tpm2.TPM2BPublic](b.Public); err != nil {
		return nil, nil, fmt.Errorf("%w: public area: %v", ErrBadBlob, err)
	}
	if priv, err = tpm2.Unmarshal[tpm2.TPM2BPrivate](b.Private); err != nil {
		return nil, nil, fmt.Errorf("%w: private area: %v", ErrBadBlob, err)
	}
	return pub, priv, nil
}

// pcrPolicy runs TPM2_PolicyPCR over pcrs in session s: the TPM folds in
// the PCRs' current values (empty pcrDigest).
func pcrPolicy(tr transport.TPM, s tpm2.TPMISHPolicy, pcrs []uint) error {
	_, err := tpm2.PolicyPCR{PolicySession: s, Pcrs: pcrSelection(tpm2.TPMAlgSHA256, pcrs)}.Execute(tr)
	if err != nil {
		return fmt.Errorf("hwtpm: TPM2_PolicyPCR(%s): %w", FormatPCRs(pcrs), err)
	}
	return nil
}

// checkSeal checks Seal's arguments for either family and returns the
// selection sorted, without duplicates.
func checkSeal(key []byte, pcrs []uint) ([]uint, error) {
	if len(key) == 0 || len(key) > MaxKey {
		return nil, fmt.Errorf("hwtpm: seal: key of %d bytes (want 1..%d)", len(key), MaxKey)
	}
	pcrs = slices.Compact(slices.Sorted(slices.Values(pcrs)))
	for _, p := range pcrs {
		if p > MaxPCR {
			return nil, fmt.Errorf("hwtpm: seal: PCR %d out of range 0..%d", p, MaxPCR)
		}
	}
	return pcrs, nil
}

// Seal seals key (1..MaxKey bytes) under the storage primary. With pcrs
// non-empty the object's only authorisation is TPM2_PolicyPCR over those
// SHA-256 PCRs at their current values; with none it is the empty
// authValue. The object is fixedTPM and fixedParent (it never leaves this
// TPM) and noDA (a policy failure must not count toward dictionary-attack
// lockout of the whole TPM). Costs: CreatePrimary, a trial session for
// the policy digest, PCR_Read, Create, two flushes; no NV write.
func (t *TPM) Seal(key []byte, pcrs []uint) (*SealedBlob, error) {
	pcrs, err := checkSeal(key, pcrs)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	blob := &SealedBlob{Family: Family20, PCRs: pcrs}
	var policy []byte
	if len(pcrs) > 0 {
		vals, err := t.readPCRs(tpm2.TPMAlgSHA256, pcrs)
		if err != nil {
			return nil, fmt.Errorf("hwtpm: seal: %w", err)
		}
		blob.PCRValues = vals
		s, closer, err := tpm2.PolicySession(t.tr, tpm2.TPMAlgSHA256, 16, tpm2.Trial())
		if err != nil {
			return nil, fmt.Errorf("hwtpm: seal: trial session: %w", err)
		}
		err = pcrPolicy(t.tr, s.Handle(), pcrs)
		var d *tpm2.PolicyGetDigestResponse
		if err == nil {
			d, err = tpm2.PolicyGetDigest{PolicySession: s.Handle()}.Execute(t.tr)
		}
		closer()
		if err != nil {
			return nil, fmt.Errorf("hwtpm: seal: policy digest: %w", err)
		}
		policy = d.PolicyDigest.Buffer
	}
	pub := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:     true,
			FixedParent:  true,
			UserWithAuth: len(pcrs) == 0,
			NoDA:         true,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
		}),
	}
	err = t.withPrimary(func(parent tpm2.AuthHandle) error {
		rsp, err := tpm2.Create{
			ParentHandle: parent,
			InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
				Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: key}),
			}},
			InPublic: tpm2.New2B(pub),
		}.Execute(t.tr)
		if err != nil {
			return fmt.Errorf("hwtpm: seal: TPM2_Create: %w", err)
		}
		blob.Public = tpm2.Marshal(rsp.OutPublic)
		blob.Private = tpm2.Marshal(rsp.OutPrivate)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return blob, nil
}

// Unseal loads the blob under the storage primary and unseals it,
// satisfying its PCR policy with the current PCR values. A policy failure
// is ErrPCRPolicy, naming the PCRs that differ from the values recorded at
// sealing; a blob that does not load is ErrWrongParent.
func (t *TPM) Unseal(b *SealedBlob) ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil", ErrBadBlob)
	}
	if b.Family == Family12 {
		return nil, fmt.Errorf("%w: the key was sealed by a TPM 1.2, this is a TPM 2.0", ErrWrongParent)
	}
	pub, priv, err := b.areas()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var key []byte
	err = t.withPrimary(func(parent tpm2.AuthHandle) error {
		ld, err := tpm2.Load{ParentHandle: parent, InPrivate: *priv, InPublic: *pub}.Execute(t.tr)
		if err != nil {
			if errors.Is(err, tpm2.TPMRCIntegrity) || errors.Is(err, tpm2.TPMRCSize) || errors.Is(err, tpm2.TPMRCValue) {
				return fmt.Errorf("%w: TPM2_Load: %w", ErrWrongParent, err)
			}
			return fmt.Errorf("hwtpm: unseal: TPM2_Load: %w", err)
		}
		defer tpm2.FlushContext{FlushHandle: ld.ObjectHandle}.Execute(t.tr)
		var auth tpm2.Session = tpm2.PasswordAuth(nil)
		if len(b.PCRs) > 0 {
			pcrs := b.PCRs
			auth = tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(tr transport.TPM, s tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
				return pcrPolicy(tr, s, pcrs)
			})
		}
		rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: auth}}.Execute(t.tr)
		if err != nil {
			if errors.Is(err, tpm2.TPMRCPolicyFail) {
				return fmt.Errorf("%w%s: TPM2_Unseal: %w", ErrPCRPolicy, t.changedPCRs(b), err)
			}
			return fmt.Errorf("hwtpm: unseal: TPM2_Unseal: %w", err)
		}
		key = rsp.OutData.Buffer
		return nil
	})
	return key, err
}

// changedPCRs names the PCRs whose current value differs from the one
// recorded in the blob (best effort: "" if unknown).
func (t *TPM) changedPCRs(b *SealedBlob) string {
	if len(b.PCRValues) != len(b.PCRs) {
		return ""
	}
	now, err := t.readPCRs(tpm2.TPMAlgSHA256, b.PCRs)
	if err != nil {
		return ""
	}
	return describeChanged(b, now)
}

// describeChanged compares the PCR values recorded in b with now (same
// order) for an unseal refusal's message.
func describeChanged(b *SealedBlob, now [][]byte) string {
	var changed []uint
	for i, p := range b.PCRs {
		if !bytes.Equal(now[i], b.PCRValues[i]) {
			changed = append(changed, p)
		}
	}
	if len(changed) == 0 {
		return fmt.Sprintf(" (sealed to PCRs %s; their values match the recorded ones)", FormatPCRs(b.PCRs))
	}
	return fmt.Sprintf(" (sealed to PCRs %s; changed since sealing: %s)", FormatPCRs(b.PCRs), FormatPCRs(changed))
}
