// Package saa is the System Approval Agent's side of the manager's
// groups: the SAA's keys, the signed list of approved boot
// configurations it gives the manager (GROUP_UPDATE), and the TPM 2.0
// approved-policy digests it signs (TPM 2.0 Part 1, 19.7.9; Part 3,
// 23.16 TPM2_PolicyAuthorize). A TPM 1.2 approval is a
// TPM_COMPOSITE_HASH (TPM 1.2 Part 2, 8.1–8.3). Xen vtpmmgr's group
// design (stubdom/vtpmmgr: mgmt_authority.c, GROUP_UPDATE) is the model;
// docs/manager-groups.md describes the wire format and its use.
package saa

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// The signed configuration list, all integers big-endian:
//
//	magic "XVTPMCFG" | version u16 | family u8 | group UUID [16] | seq u64 |
//	count u8 | count × approval | sigLen u16 | sig
//	approval = pcrs u32 | digest [20 or 32] | (TPM 2.0) tpmSigLen u16 | tpmSig
//
// sig is the SAA's signature over the SHA-256 of every byte before
// sigLen; tpmSig is its signature over AuthorizeHash of the approval's
// ApprovedPolicy, which the hardware TPM checks itself.
const (
	Magic        = "XVTPMCFG"
	Version      = 1
	MaxApprovals = 8

	headerSize = len(Magic) + 2 + 1 + 16 + 8 + 1
	// MaxListSize is the longest list: a header, MaxApprovals TPM 2.0
	// approvals with RSA signatures, and an RSA signature. It fits a
	// GROUP_UPDATE request (proto.MaxMessage less its 14-byte header and
	// group field).
	MaxListSize = headerSize + MaxApprovals*(4+sha256.Size+2+RSASigSize) + 2 + RSASigSize
)

// Family is the hardware TPM family a list is for.
type Family uint8

const (
	Family12 Family = 1 // TPM 1.2: approvals are SHA-1 PCR composites
	Family20 Family = 2 // TPM 2.0: approvals are SHA-256 PCR digests
)

func (f Family) String() string {
	switch f {
	case Family12:
		return "1.2"
	case Family20:
		return "2.0"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// DigestSize is the size of an approval's digest for f (0 if unknown).
func (f Family) DigestSize() int {
	switch f {
	case Family12:
		return sha1.Size
	case Family20:
		return sha256.Size
	}
	return 0
}

// Approval is one approved boot configuration: PCRs (ascending, 0..23)
// and their digest — Composite12 of the SHA-1 values on TPM 1.2,
// PCRDigest of the SHA-256 values on TPM 2.0. TPMSig (TPM 2.0 only) is
// the SAA's signature over AuthorizeHash(ApprovedPolicy(PCRs, Digest,
// seq, DefaultApprovalIndex)).
type Approval struct {
	PCRs   []uint
	Digest []byte
	TPMSig []byte
}

// ConfigList is a group's list of approved configurations.
type ConfigList struct {
	Family    Family
	Group     [16]byte
	Seq       uint64
	Approvals []Approval
}

// Signed is a parsed signed list and its bytes.
type Signed struct {
	List ConfigList
	Raw  []byte

	body []byte // the signed part of Raw
	sig  []byte
}

// PCRMask is the u32 bitmap of pcrs (bit i = PCR i), checking they are
// ascending, unrepeated, within 0..23 and not none.
func PCRMask(pcrs []uint) (uint32, error) {
	if len(pcrs) == 0 {
		return 0, errors.New("saa: an approval selects no PCR")
	}
	var m uint32
	for i, p := range pcrs {
		if p > 23 {
			return 0, fmt.Errorf("saa: PCR %d out of range 0..23", p)
		}
		if i > 0 && p <= pcrs[i-1] {
			return 0, errors.New("saa: PCRs must be ascending without repeats")
		}
		m |= 1 << p
	}
	return m, nil
}

// PCRsOf lists the PCRs of a bitmap in ascending order.
func PCRsOf(m uint32) []uint {
	var pcrs []uint
	for i := uint(0); i < 32; i++ {
		if m&(1<<i) != 0 {
			pcrs = append(pcrs, i)
		}
	}
	return pcrs
}

// ApprovalMessage is the digest an approval's TPMSig signs in a list
// with sequence seq: AuthorizeHash(ApprovedPolicy(a.PCRs, a.Digest, seq,
// DefaultApprovalIndex)), the aHash TPM2_VerifySignature is given.
func ApprovalMessage(a Approval, seq uint64) ([]byte, error) {
	pol, err := ApprovedPolicy(a.PCRs, a.Digest, seq, DefaultApprovalIndex)
	if err != nil {
		return nil, err
	}
	return AuthorizeHash(pol), nil
}

// check validates l's fields apart from the signatures.
func (l ConfigList) check() error {
	if l.Family.DigestSize() == 0 {
		return fmt.Errorf("saa: family %d, want 1 (TPM 1.2) or 2 (TPM 2.0)", uint8(l.Family))
	}
	if l.Seq == 0 {
		// The approval counter starts at 1 and GROUP_SHOW's seq 0 means
		// no list: a list with sequence 0 could never be used.
		return errors.New("saa: sequence number 0 (lists start at 1)")
	}
	if n := len(l.Approvals); n == 0 || n > MaxApprovals {
		return fmt.Errorf("saa: %d approvals, want 1..%d", n, MaxApprovals)
	}
	for i, a := range l.Approvals {
		if _, err := PCRMask(a.PCRs); err != nil {
			return fmt.Errorf("approval %d: %w", i, err)
		}
		if len(a.Digest) != l.Family.DigestSize() {
			return fmt.Errorf("saa: approval %d: digest of %d bytes, want %d for TPM %s", i, len(a.Digest), l.Family.DigestSize(), l.Family)
		}
	}
	return nil
}

// SignList signs l with signer (an SAA key): for a TPM 2.0 list, each
// approval's TPMSig first (any TPMSig in l is replaced), then the list.
func SignList(l ConfigList, signer crypto.Signer) ([]byte, error) {
	pub, err := signerKey(signer)
	if err != nil {
		return nil, err
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, MaxListSize)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = append(b, byte(l.Family))
	b = append(b, l.Group[:]...)
	b = binary.BigEndian.AppendUint64(b, l.Seq)
	b = append(b, byte(len(l.Approvals)))
	for i, a := range l.Approvals {
		m, _ := PCRMask(a.PCRs) // checked
		b = binary.BigEndian.AppendUint32(b, m)
		b = append(b, a.Digest...)
		if l.Family != Family20 {
			continue
		}
		msg, err := ApprovalMessage(a, l.Seq)
		if err != nil {
			return nil, fmt.Errorf("approval %d: %w", i, err)
		}
		sig, err := sign(signer, pub, msg)
		if err != nil {
			return nil, fmt.Errorf("approval %d: %w", i, err)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(sig)))
		b = append(b, sig...)
	}
	h := sha256.Sum256(b)
	sig, err := sign(signer, pub, h[:])
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sig)))
	b = append(b, sig...)
	if len(b) > MaxListSize {
		return nil, fmt.Errorf("saa: list of %d bytes exceeds %d", len(b), MaxListSize)
	}
	return b, nil
}

// reader takes fields off a list, remembering the first shortage.
type reader struct {
	b   []byte
	off int
}

func (r *reader) take(n int, field string) ([]byte, error) {
	if len(r.b)-r.off < n {
		return nil, fmt.Errorf("saa: list truncated in %s (offset %d, %d bytes needed, %d left)", field, r.off, n, len(r.b)-r.off)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) u8(field string) (uint8, error) {
	p, err := r.take(1, field)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (r *reader) u16(field string) (uint16, error) {
	p, err := r.take(2, field)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(p), nil
}

func (r *reader) u32(field string) (uint32, error) {
	p, err := r.take(4, field)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(p), nil
}

func (r *reader) u64(field string) (uint64, error) {
	p, err := r.take(8, field)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(p), nil
}

// sigLenOK reports whether n is a signature length some SAA key makes.
func sigLenOK(n int) bool {
	return n == RSASigSize || (n >= ECDSASigMin && n <= ECDSASigMax)
}

// ParseList decodes a signed list, checking every field but not the
// signatures (Verify does, given the group's key). The result's slices
// alias b.
func ParseList(b []byte) (*Signed, error) {
	if len(b) > MaxListSize {
		return nil, fmt.Errorf("saa: list of %d bytes exceeds %d", len(b), MaxListSize)
	}
	r := &reader{b: b}
	magic, err := r.take(len(Magic), "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("saa: magic %q, want %q (not a signed configuration list)", magic, Magic)
	}
	v, err := r.u16("version")
	if err != nil {
		return nil, err
	}
	if v != Version {
		return nil, fmt.Errorf("saa: version %d, want %d", v, Version)
	}
	fam, err := r.u8("family")
	if err != nil {
		return nil, err
	}
	var l ConfigList
	l.Family = Family(fam)
	if l.Family.DigestSize() == 0 {
		return nil, fmt.Errorf("saa: family %d, want 1 (TPM 1.2) or 2 (TPM 2.0)", fam)
	}
	g, err := r.take(16, "group UUID")
	if err != nil {
		return nil, err
	}
	copy(l.Group[:], g)
	if l.Seq, err = r.u64("sequence number"); err != nil {
		return nil, err
	}
	if l.Seq == 0 {
		return nil, errors.New("saa: sequence number 0 (lists start at 1)")
	}
	n, err := r.u8("approval count")
	if err != nil {
		return nil, err
	}
	if n == 0 || n > MaxApprovals {
		return nil, fmt.Errorf("saa: approval count %d, want 1..%d", n, MaxApprovals)
	}
	for i := range int(n) {
		var a Approval
		m, err := r.u32(fmt.Sprintf("approval %d PCR bitmap", i))
		if err != nil {
			return nil, err
		}
		if m == 0 || m>>24 != 0 {
			return nil, fmt.Errorf("saa: approval %d PCR bitmap %#08x, want a non-empty selection of PCRs 0..23", i, m)
		}
		a.PCRs = PCRsOf(m)
		if a.Digest, err = r.take(l.Family.DigestSize(), fmt.Sprintf("approval %d digest", i)); err != nil {
			return nil, err
		}
		if l.Family == Family20 {
			sl, err := r.u16(fmt.Sprintf("approval %d TPM signature length", i))
			if err != nil {
				return nil, err
			}
			if !sigLenOK(int(sl)) {
				return nil, fmt.Errorf("saa: approval %d TPM signature length %d, want %d (RSA) or %d..%d (ECDSA)", i, sl, RSASigSize, ECDSASigMin, ECDSASigMax)
			}
			if a.TPMSig, err = r.take(int(sl), fmt.Sprintf("approval %d TPM signature", i)); err != nil {
				return nil, err
			}
		}
		l.Approvals = append(l.Approvals, a)
	}
	body := b[:r.off]
	sl, err := r.u16("signature length")
	if err != nil {
		return nil, err
	}
	if !sigLenOK(int(sl)) {
		return nil, fmt.Errorf("saa: signature length %d, want %d (RSA) or %d..%d (ECDSA)", sl, RSASigSize, ECDSASigMin, ECDSASigMax)
	}
	sig, err := r.take(int(sl), "signature")
	if err != nil {
		return nil, err
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("saa: %d bytes follow the signature", len(b)-r.off)
	}
	return &Signed{List: l, Raw: b, body: body, sig: sig}, nil
}

// Verify checks that pub signed the list and, on TPM 2.0, every
// approval's TPMSig — the signatures the hardware TPM will check — so a
// list the TPM would refuse is refused here first.
func (s *Signed) Verify(pub PublicKey) error {
	if s == nil || s.body == nil {
		return errors.New("saa: no parsed list to verify")
	}
	h := sha256.Sum256(s.body)
	if err := Verify(pub, h[:], s.sig); err != nil {
		return fmt.Errorf("list signature: %w", err)
	}
	if s.List.Family != Family20 {
		return nil
	}
	for i, a := range s.List.Approvals {
		msg, err := ApprovalMessage(a, s.List.Seq)
		if err != nil {
			return fmt.Errorf("approval %d: %w", i, err)
		}
		if err := Verify(pub, msg, a.TPMSig); err != nil {
			return fmt.Errorf("approval %d TPM signature: %w", i, err)
		}
	}
	return nil
}
