package hwtpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// SealedBlob is a sealed storage key as kept on the manager's disk, for
// either TPM family, with, for diagnostics, the PCR values it was sealed
// to (SHA-256 on TPM 2.0, SHA-1 on TPM 1.2).
type SealedBlob struct {
	// Family is the TPM family that sealed it; the zero value means
	// TPM 2.0.
	Family    Family
	PCRs      []uint   // the PCR selection; empty: no PCR binding
	PCRValues [][]byte // the values of PCRs at sealing, same order

	// Locality is the only locality the key is released at (0–4): the
	// manager's when it sealed (TPM 2.0: PolicyLocality; TPM 1.2:
	// localityAtRelease). Not recorded in legacy TPM 2.0 blobs.
	Locality uint8

	// TPM 2.0: the sealed object, loadable under the storage primary.
	Public  []byte // TPM2B_PUBLIC, marshalled
	Private []byte // TPM2B_PRIVATE, marshalled
	// PrimaryName is the storage primary's name at sealing: unsealing
	// salts its sessions to that primary, so it must be the same key
	// (empty in legacy blobs).
	PrimaryName []byte
	// EpochIndex and EpochBound: the policy requires the seal epoch at
	// that NV index to be at most EpochBound (epoch.go).
	EpochIndex uint32
	EpochBound uint64
	// SAAPublic (TPM 2.0, format version 4) is the System Approval
	// Agent's public key as a TPMT_PUBLIC, marshalled, when the blob was
	// sealed by SealAuthorized: its policy starts with TPM2_PolicyAuthorize
	// by that key instead of PolicyPCR, and only UnsealAuthorized, given
	// approvals, unseals it. Empty otherwise.
	SAAPublic []byte

	// TPM 1.2: TPM_Seal's output under the SRK, released only at
	// Locality and with PCRs at the sealed values.
	StoredData []byte // TPM_STORED_DATA12, marshalled
}

// Legacy reports a TPM 2.0 blob of format version 1, sealed before the
// storage key's policy had PolicyLocality and the seal epoch: it still
// unseals (a salted session with response encryption, as for any blob),
// and the manager reseals it to the current version at start-up.
func (b *SealedBlob) Legacy() bool { return b.Family != Family12 && len(b.PrimaryName) == 0 }

// Authorized reports a TPM 2.0 blob sealed by SealAuthorized (format
// version 4), released under PCR values an SAA approved.
func (b *SealedBlob) Authorized() bool { return b.Family != Family12 && len(b.SAAPublic) > 0 }

// MaxKey is the largest secret Seal accepts (TPM2B_SENSITIVE_DATA holds
// at least 128 bytes on every TPM).
const MaxKey = 128

const (
	blobMagic         = "XVSK"
	blobVersionLegacy = 1 // TPM 2.0, PolicyPCR only
	blobVersion12     = 2 // TPM 1.2
	blobVersion       = 3 // TPM 2.0: PolicyPCR, PolicyLocality, PolicyNV(seal epoch)
	blobVersionSAA    = 4 // TPM 2.0: PolicyAuthorize(SAA key), PolicyLocality, PolicyNV(seal epoch)
	// MaxBlobSize bounds an encoded blob; real ones are ~1 KiB at most.
	MaxBlobSize = 3072
)

// Marshal encodes the blob, big-endian: "XVSK" ‖ u16 version ‖ u32 PCR
// bitmap ‖ u8 count ‖ count × (u8 size ‖ value), then by version:
//
//   - 4 (TPM 2.0, SealAuthorized; no PCRs): as 3, then u16 size ‖ the
//     SAA's TPMT_PUBLIC;
//   - 3 (TPM 2.0): u8 locality ‖ u32 epoch index ‖ u64 epoch bound ‖ u16
//     size ‖ primary name ‖ u16 size ‖ public ‖ u16 size ‖ private;
//   - 2 (TPM 1.2): u8 locality ‖ u16 size ‖ TPM_STORED_DATA12;
//   - 1 (TPM 2.0, legacy): u16 size ‖ public ‖ u16 size ‖ private.
func (b *SealedBlob) Marshal() []byte {
	var w bytes.Buffer
	w.WriteString(blobMagic)
	version := uint16(blobVersion)
	switch {
	case b.Family == Family12:
		version = blobVersion12
	case b.Legacy():
		version = blobVersionLegacy
	case b.Authorized():
		version = blobVersionSAA
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
	switch version {
	case blobVersion12:
		w.WriteByte(b.Locality)
		areas = [][]byte{b.StoredData}
	case blobVersion, blobVersionSAA:
		w.WriteByte(b.Locality)
		w.Write(binary.BigEndian.AppendUint32(nil, b.EpochIndex))
		w.Write(binary.BigEndian.AppendUint64(nil, b.EpochBound))
		areas = [][]byte{b.PrimaryName, b.Public, b.Private}
		if version == blobVersionSAA {
			areas = append(areas, b.SAAPublic)
		}
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
	if string(hdr.Magic[:]) != blobMagic || hdr.Version < blobVersionLegacy || hdr.Version > blobVersionSAA {
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
	if hdr.Version == blobVersionSAA && (hdr.Mask != 0 || hdr.N != 0) {
		return bad("an authorized blob binds PCRs through approvals, not a selection of its own")
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
	if hdr.Version != blobVersionLegacy {
		loc, err := r.ReadByte()
		if err != nil || loc > 4 {
			return bad("locality missing or beyond 4")
		}
		b.Locality = loc
	}
	switch hdr.Version {
	case blobVersion12:
		b.Family = Family12
		areas = []*[]byte{&b.StoredData}
	case blobVersion, blobVersionSAA:
		var ep struct {
			Index uint32
			Bound uint64
		}
		if err := binary.Read(r, binary.BigEndian, &ep); err != nil || ep.Index>>24 != 0x01 {
			return bad("seal epoch missing or not an NV index")
		}
		b.EpochIndex, b.EpochBound = ep.Index, ep.Bound
		areas = []*[]byte{&b.PrimaryName, &b.Public, &b.Private}
		if hdr.Version == blobVersionSAA {
			areas = append(areas, &b.SAAPublic)
		}
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
	if b.Authorized() {
		if _, _, err := saaKey(b.SAAPublic); err != nil {
			return nil, fmt.Errorf("%w: SAA key: %w", ErrBadBlob, err)
		}
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

// policyLocality runs TPM2_PolicyLocality(policySession, locality) (Part 3,
// 23.8), which go-tpm does not provide: the command is the header, the
// session handle and the TPMA_LOCALITY byte, the answer a bare header.
// The TPM checks the locality when the session authorises the command.
func policyLocality(tr transport.TPM, s tpm2.TPMISHPolicy, loc uint8) error {
	cmd := binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMSTNoSessions))
	cmd = binary.BigEndian.AppendUint32(cmd, 15)
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMCCPolicyLocality))
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(s))
	cmd = append(cmd, 1<<loc)
	rsp, err := tr.Send(cmd)
	if err == nil && len(rsp) < 10 {
		err = fmt.Errorf("%d-byte response", len(rsp))
	}
	if err == nil {
		if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
			err = tpm2.TPMRC(rc)
		}
	}
	if err != nil {
		return fmt.Errorf("hwtpm: TPM2_PolicyLocality(%d): %w", loc, err)
	}
	return nil
}

// epochPolicy runs TPM2_PolicyNV(seal epoch ≤ b.EpochBound) in session s,
// authorised by the epoch's empty authValue.
func epochPolicy(tr transport.TPM, s tpm2.TPMISHPolicy, b *SealedBlob) error {
	h, err := epochHandle(b.EpochIndex, true)
	if err != nil {
		return err
	}
	_, err = b.epochCheck(h, s).Execute(tr)
	if errors.Is(err, tpm2.TPMRCPolicy) {
		err = fmt.Errorf("%w: %w", ErrRetired, err)
	}
	if err != nil {
		return fmt.Errorf("hwtpm: TPM2_PolicyNV(seal epoch %#08x ≤ %d): %w", b.EpochIndex, b.EpochBound, err)
	}
	return nil
}

func (b *SealedBlob) epochCheck(h tpm2.NamedHandle, s tpm2.TPMISHPolicy) tpm2.PolicyNV {
	return tpm2.PolicyNV{
		AuthHandle:    tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:       h,
		PolicySession: s,
		OperandB:      tpm2.TPM2BOperand{Buffer: binary.BigEndian.AppendUint64(nil, b.EpochBound)},
		Operation:     tpm2.TPMEOUnsignedLE,
	}
}

// policy runs b's policy in session s: PolicyPCR over its PCRs (if any),
// PolicyLocality at its locality, PolicyNV on the seal epoch; a legacy
// blob's is PolicyPCR alone.
func (b *SealedBlob) policy(tr transport.TPM, s tpm2.TPMISHPolicy) error {
	if len(b.PCRs) > 0 {
		if err := pcrPolicy(tr, s, b.PCRs); err != nil {
			return err
		}
	}
	if b.Legacy() {
		return nil
	}
	if err := policyLocality(tr, s, b.Locality); err != nil {
		return err
	}
	return epochPolicy(tr, s, b)
}

// policyDigest is the digest b.policy leaves in a session when the PCRs
// hold b.PCRValues (Part 3, 23.7, 23.8, 23.9), computed here rather than
// in a trial session.
func (b *SealedBlob) policyDigest() ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if b.Authorized() {
		_, name, err := saaKey(b.SAAPublic)
		if err != nil {
			return nil, err
		}
		if err := (tpm2.PolicyAuthorize{KeySign: name, PolicyRef: tpm2.TPM2BDigest{Buffer: saa.PolicyRef}}).Update(calc); err != nil {
			return nil, err
		}
	} else if len(b.PCRs) > 0 {
		h := sha256.New()
		for _, v := range b.PCRValues {
			h.Write(v)
		}
		if err := (tpm2.PolicyPCR{Pcrs: pcrSelection(tpm2.TPMAlgSHA256, b.PCRs), PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}}).Update(calc); err != nil {
			return nil, err
		}
	}
	if err := calc.Update(tpm2.TPMCCPolicyLocality, uint8(1)<<b.Locality); err != nil {
		return nil, err
	}
	eh, err := epochHandle(b.EpochIndex, true)
	if err != nil {
		return nil, err
	}
	if err := b.epochCheck(eh, 0).Update(calc); err != nil {
		return nil, err
	}
	return calc.Hash().Digest, nil
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

// Seal seals key (1..MaxKey bytes) under the storage primary. The
// object's only authorisation is its policy: TPM2_PolicyPCR over pcrs
// (SHA-256 bank, at their current values; none for no PCR binding),
// TPM2_PolicyLocality at Config.Locality, and TPM2_PolicyNV requiring the
// seal epoch at most at its current value — so a later Reseal and Retire
// retire it (epoch.go), and nothing else does. The object is fixedTPM and
// fixedParent (it never leaves this TPM) and noDA (a policy failure must
// not count toward dictionary-attack lockout of the whole TPM). The key
// reaches the TPM encrypted (TPM2_Create in a session salted to the
// storage primary, inSensitive encrypted). Costs: two CreatePrimary (the
// null-hierarchy salt key and the storage primary), PCR_Read,
// NV_ReadPublic and NV_Read of the epoch (NV_DefineSpace and one
// NV_Increment the first time on a TPM), Create, flushes; no NV write
// after the first.
func (t *TPM) Seal(key []byte, pcrs []uint) (*SealedBlob, error) {
	return t.seal(key, pcrs, 0, nil)
}

// Reseal is Seal of a key that an older blob on this TPM holds, for a new
// selection: the new blob needs the seal epoch one above its value, and
// Retire (or unsealing the new blob) moves the epoch there, after which
// no blob sealed before unseals any more. The older blob keeps working
// until then, so a power cut between writing the new blob and Retire
// loses nothing.
func (t *TPM) Reseal(key []byte, pcrs []uint) (*SealedBlob, error) {
	return t.seal(key, pcrs, 1, nil)
}

// seal seals key to pcrs, or, with saaPub (a marshalled TPMT_PUBLIC), to
// what that SAA approves, with the seal epoch bound ahead of its value.
func (t *TPM) seal(key []byte, pcrs []uint, ahead uint64, saaPub []byte) (*SealedBlob, error) {
	pcrs, err := checkSeal(key, pcrs)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	blob := &SealedBlob{Family: Family20, PCRs: pcrs, Locality: t.cfg.Locality, EpochIndex: t.cfg.EpochIndex, SAAPublic: saaPub}
	if len(pcrs) > 0 {
		if blob.PCRValues, err = t.readPCRs(tpm2.TPMAlgSHA256, pcrs); err != nil {
			return nil, fmt.Errorf("hwtpm: seal: %w", err)
		}
	}
	err = t.withPrimary(nil, func(p *saltKey) error {
		v, err := t.ensureEpoch(p)
		if err != nil {
			return fmt.Errorf("hwtpm: seal: %w", err)
		}
		blob.EpochBound = v + ahead
		if blob.Authorized() {
			// The approval counter exists before any approval is used,
			// so the SAA can learn its value and sign above it.
			if _, err := t.ensureApprovals(p); err != nil {
				return fmt.Errorf("hwtpm: seal: %w", err)
			}
		}
		blob.PrimaryName = bytes.Clone(p.name.Buffer)
		policy, err := blob.policyDigest()
		if err != nil {
			return fmt.Errorf("hwtpm: seal: policy digest: %w", err)
		}
		pub := tpm2.TPMTPublic{
			Type:    tpm2.TPMAlgKeyedHash,
			NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{
				FixedTPM:    true,
				FixedParent: true,
				NoDA:        true,
			},
			AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
				Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
			}),
		}
		rsp, err := tpm2.Create{
			ParentHandle: t.parent(p, encryptIn()),
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
// satisfying its policy. The storage primary must have the name the blob
// recorded; the key comes back encrypted (TPM2_Unseal in a policy session
// salted to the storage primary, outData encrypted). A PCR policy failure
// is ErrPCRPolicy, naming the PCRs that differ from the values recorded
// at sealing; another locality is ErrLocality; a blob whose seal epoch
// has passed is ErrRetired; a blob that does not load, or another
// storage primary, is ErrWrongParent. Unsealing a blob from Reseal
// retires the older ones, as Retire does (one NV write, once). A blob
// from SealAuthorized is refused with ErrNotApproved: UnsealAuthorized
// unseals it, given approvals.
func (t *TPM) Unseal(b *SealedBlob) ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil", ErrBadBlob)
	}
	if b.Family == Family12 {
		return nil, fmt.Errorf("%w: the key was sealed by a TPM 1.2, this is a TPM 2.0", ErrWrongParent)
	}
	if b.Authorized() {
		return nil, fmt.Errorf("%w: this key is sealed to the configurations a System Approval Agent approves; unsealing it needs the approvals (UnsealAuthorized)", ErrNotApproved)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unsealWith(b, b.policy)
}

// unsealWith is Unseal with policy as the blob's policy (run in the
// policy session that authorises TPM2_Unseal). The caller holds t.mu.
func (t *TPM) unsealWith(b *SealedBlob, policy func(tr transport.TPM, s tpm2.TPMISHPolicy) error) ([]byte, error) {
	pub, priv, err := b.areas()
	if err != nil {
		return nil, err
	}
	if !b.Legacy() && b.Locality != t.cfg.Locality {
		return nil, fmt.Errorf("%w: sealed for release at locality %d, the manager uses locality %d (tpmlocality=)", ErrLocality, b.Locality, t.cfg.Locality)
	}
	var key []byte
	err = t.withPrimary(b.PrimaryName, func(p *saltKey) error {
		var epoch uint64
		if !b.Legacy() {
			if _, err := t.epochState(b.EpochIndex); errors.Is(err, errNoEpoch) {
				return fmt.Errorf("%w: %w (undefined by the TPM owner?)", ErrRetired, err)
			} else if err != nil {
				return err
			}
			if epoch, err = t.readEpoch(b.EpochIndex); err != nil {
				return err
			} else if epoch > b.EpochBound {
				return fmt.Errorf("%w: seal epoch %#08x is %d, the blob needs at most %d", ErrRetired, b.EpochIndex, epoch, b.EpochBound)
			}
		}
		ld, err := tpm2.Load{ParentHandle: t.parent(p), InPrivate: *priv, InPublic: *pub}.Execute(t.tr)
		if err != nil {
			if errors.Is(err, tpm2.TPMRCIntegrity) || errors.Is(err, tpm2.TPMRCSize) || errors.Is(err, tpm2.TPMRCValue) {
				return fmt.Errorf("%w: TPM2_Load: %w", ErrWrongParent, err)
			}
			return fmt.Errorf("hwtpm: unseal: TPM2_Load: %w", err)
		}
		defer t.flush(ld.ObjectHandle)
		// Legacy blobs without PCRs carry userWithAuth and the empty
		// authValue; every other blob is released by its policy.
		var auth tpm2.Session = p.hmac(nil, encryptOut())
		if !b.Legacy() || len(b.PCRs) > 0 {
			auth = tpm2.Policy(sessionHash, sessionNonce, func(tr transport.TPM, s tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
				// go-tpm does not flush a session whose policy failed.
				err := policy(tr, s)
				if err != nil {
					tpm2.FlushContext{FlushHandle: s}.Execute(tr)
				}
				return err
			}, tpm2.Salted(p.handle, p.pub), encryptOut())
		}
		rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: auth}}.Execute(t.tr)
		switch {
		case err == nil:
		case errors.Is(err, ErrRetired), errors.Is(err, ErrNotApproved), errors.Is(err, ErrRevoked), errors.Is(err, ErrBadApproval):
			return err
		case errors.Is(err, tpm2.TPMRCLocality):
			return fmt.Errorf("%w: sealed for release at locality %d, and this command did not arrive there: TPM2_Unseal: %w", ErrLocality, b.Locality, err)
		case errors.Is(err, tpm2.TPMRCPolicyFail):
			return fmt.Errorf("%w%s: TPM2_Unseal: %w", ErrPCRPolicy, t.changedPCRs(b), err)
		default:
			return fmt.Errorf("hwtpm: unseal: TPM2_Unseal: %w", err)
		}
		key = rsp.OutData.Buffer
		if b.Legacy() || epoch == b.EpochBound {
			return nil
		}
		if err := t.catchUp(p, b); err != nil {
			return fmt.Errorf("hwtpm: unsealed, but retiring the blobs sealed before: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return key, nil
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
