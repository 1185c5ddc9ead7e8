// Package deepquote is the evidence that binds a vTPM to the hardware TPM
// under it: a quote by the vTPM's group attestation key in the hardware
// TPM (TPM 2.0 Part 3, 18.4 TPM2_Quote; Part 2, 10.12 TPMS_ATTEST; or on
// TPM 1.2 hardware TPM_Quote with the group's identity key, TPM 1.2 Part
// 3, 16.1, Part 2, 11.3 TPM_QUOTE_INFO) whose qualifyingData (TPM 1.2:
// externalData, Binding.Nonce12) is the digest of a Binding: the verifier's nonce, the
// vTPM's UUID and group, the vTPM's own PCR values, and the group's System
// Approval Agent key and signed configuration list (mgrdomain/saa). It is
// Xen vtpmmgr's deep quote (GET_QUOTE, reached from the guest through
// vtpm-stubdom's TPM_ORD_DeepQuote) with SHA-256 and a defined encoding
// in place of its SHA-1 concatenation (docs/deep-quote.md).
//
// The manager computes the Binding's digest (it knows the UUID from Xen,
// never from the request), the vTPM domain adds its PCR values and hands
// the Bundle to its guest, and a verifier (Verify, `xenvtpm verify
// quote`) checks every link and names the first that fails.
package deepquote

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Sizes and bounds.
const (
	// MaxNonce is the longest nonce: TPM2B_DATA's 64 bytes.
	MaxNonce = 64
	// DigestSize is the size of every digest in a Binding (SHA-256).
	DigestSize = sha256.Size
	// MaxAttest and MaxSignature bound the hardware quote's parts.
	MaxAttest    = 1024
	MaxSignature = 512
)

// Binding is what the hardware quote's qualifyingData commits to.
type Binding struct {
	Nonce []byte   // the verifier's, 0 to MaxNonce bytes
	VTPM  [16]byte // the vTPM's UUID, as Xen's toolstack gave it to the manager
	Group [16]byte // its group's UUID
	// VTPMBank is the vTPM's PCR bank quoted (BankSHA256 for a TPM 2.0
	// vTPM, BankSHA1 for the TPM 1.2 personality), VTPMPCRs a bitmap of
	// its PCRs (bit i: PCR i) and VTPMPCRDigest the SHA-256 of their
	// values in ascending order.
	VTPMBank      uint16
	VTPMPCRs      uint32
	VTPMPCRDigest [DigestSize]byte
	// SAAKey is the SHA-256 of the group's SAA public key (its wire form)
	// and List that of its installed signed list, with ListSeq its
	// sequence number; all zero when the group has none.
	SAAKey  [DigestSize]byte
	ListSeq uint64
	List    [DigestSize]byte
}

// The vTPM PCR banks a Binding names, by their TPM_ALG_ID (TPM 2.0 Part
// 2, 6.3).
const (
	BankSHA1   uint16 = 0x0004
	BankSHA256 uint16 = 0x000B
)

// BankSize is the size of a PCR value of bank, 0 for a bank a Binding
// cannot name.
func BankSize(bank uint16) int {
	switch bank {
	case BankSHA1:
		return 20
	case BankSHA256:
		return 32
	}
	return 0
}

const bindingMagic = "xenvtpm deep quote v2\x00"

// Marshal encodes the Binding: the magic, u8 nonce length, nonce, vTPM
// UUID, group UUID, u16 bank, u32 PCR bitmap, PCR digest, SAA key
// digest, u64 sequence, list digest.
func (b *Binding) Marshal() []byte {
	out := append([]byte(bindingMagic), byte(len(b.Nonce)))
	out = append(out, b.Nonce...)
	out = append(out, b.VTPM[:]...)
	out = append(out, b.Group[:]...)
	out = binary.BigEndian.AppendUint16(out, b.VTPMBank)
	out = binary.BigEndian.AppendUint32(out, b.VTPMPCRs)
	out = append(out, b.VTPMPCRDigest[:]...)
	out = append(out, b.SAAKey[:]...)
	out = binary.BigEndian.AppendUint64(out, b.ListSeq)
	return append(out, b.List[:]...)
}

// QualifyingData is the hardware quote's qualifyingData: SHA-256 of the
// encoded Binding (32 bytes, which every TPM 2.0 takes).
func (b *Binding) QualifyingData() []byte {
	d := sha256.Sum256(b.Marshal())
	return d[:]
}

// PCRDigest is the SHA-256 of PCR values in ascending PCR order, as
// TPM2_Quote's pcrDigest and VTPMPCRDigest are.
func PCRDigest(values [][]byte) [DigestSize]byte {
	h := sha256.New()
	for _, v := range values {
		h.Write(v)
	}
	var d [DigestSize]byte
	h.Sum(d[:0])
	return d
}

// Hardware families of a quote.
const (
	// HW12 is TPM_Quote (TPM 1.2 Part 3, 16.1) with the group's identity
	// key: Attest is the TPM_QUOTE_INFO it signs (Part 2, 11.3),
	// Signature the RSASSA-PKCS1-v1_5 SHA-1 signature over it, and the
	// hardware PCR values travel beside them (Answer.HWPCRs,
	// HWPCRValues), since TPM_QUOTE_INFO holds only their composite
	// digest.
	HW12 = 1
	HW20 = 2 // TPM2_Quote: TPMS_ATTEST and TPMT_SIGNATURE
)

// Sizes of a HW12 quote: TPM_QUOTE_INFO is version 1.1.0.0 ‖ "QUOT" ‖
// the 20-byte TPM_COMPOSITE_HASH ‖ the 20-byte externalData; the
// signature is an RSA-2048 one (an identity key is RSA-2048 here,
// hwtpm.MakeIdentity).
const (
	QuoteInfo12Size = 48
	Signature12Size = 256
	pcrValue12Size  = 20
)

// Nonce12 is the externalData of a HW12 quote: the first 20 bytes of
// QualifyingData (SHA-256 of the Binding). TPM_Quote takes exactly 20
// bytes. Truncated SHA-256 rather than SHA-1 of the encoding keeps one
// digest of the Binding for both families, and the vTPM chooses part of
// what is hashed (its nonce and PCR digest), which SHA-1's practical
// chosen-prefix collisions would let it exploit; a 160-bit truncation of
// SHA-256 has no such attack known.
func (b *Binding) Nonce12() [20]byte {
	var n [20]byte
	copy(n[:], b.QualifyingData())
	return n
}

// Answer is the manager's part of a deep quote: the Binding it computed
// and the hardware quote over it. The vTPM domain adds its PCR values to
// make the Bundle its guest gets.
type Answer struct {
	Binding Binding
	// HWFamily is HW20 or HW12. On HW20 Attest is the quote's
	// TPMS_ATTEST and Signature its TPMT_SIGNATURE, marshalled; on HW12
	// Attest is the TPM_QUOTE_INFO and Signature the 256-byte RSA
	// signature.
	HWFamily  uint8
	Attest    []byte
	Signature []byte
	// HWPCRs (bit i: PCR i) and HWPCRValues (20 bytes each, ascending)
	// are, on HW12 only, the hardware PCRs the quote covers and their
	// values, from which a verifier recomputes TPM_QUOTE_INFO's
	// composite digest. Zero and nil on HW20, whose TPMS_ATTEST names
	// the PCRs itself.
	HWPCRs      uint32
	HWPCRValues [][]byte
}

// Bundle is a deep quote as the guest receives it.
type Bundle struct {
	Answer
	// VTPMPCRValues are the values of Binding.VTPMPCRs's PCRs,
	// ascending, each of Binding.VTPMBank's size.
	VTPMPCRValues [][]byte
}

const (
	answerMagic = "XVTPMDA2"
	bundleMagic = "XVTPMDQ2"
)

// Marshal encodes the Answer: its magic, the Binding's encoding (as
// Binding.Marshal, without its magic), u8 family, u16 attestLen, attest,
// on HW12 only u32 hardware PCR bitmap ‖ their values (20 bytes each,
// ascending), then u16 sigLen, signature.
func (a *Answer) Marshal() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	return a.appendQuote(append([]byte(answerMagic), a.Binding.Marshal()[len(bindingMagic):]...)), nil
}

func (a *Answer) appendQuote(out []byte) []byte {
	out = append(out, a.HWFamily)
	out = binary.BigEndian.AppendUint16(out, uint16(len(a.Attest)))
	out = append(out, a.Attest...)
	if a.HWFamily == HW12 {
		out = binary.BigEndian.AppendUint32(out, a.HWPCRs)
		for _, v := range a.HWPCRValues {
			out = append(out, v...)
		}
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(a.Signature)))
	return append(out, a.Signature...)
}

// Marshal encodes the Bundle as the Answer, with its own magic and the
// vTPM's PCR values (of the bank's size) after the Binding.
func (q *Bundle) Marshal() ([]byte, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	out := append([]byte(bundleMagic), q.Binding.Marshal()[len(bindingMagic):]...)
	for _, v := range q.VTPMPCRValues {
		out = append(out, v...)
	}
	return q.appendQuote(out), nil
}

// MaxBundle is the longest encoded Bundle: it fits one TPM response of
// 4096 bytes with its header and size field.
const MaxBundle = len(bundleMagic) + 1 + MaxNonce + 16 + 16 + 2 + 4 + 3*DigestSize + 8 + 24*DigestSize + 1 + 2 + MaxAttest + 2 + MaxSignature

func (a *Answer) check() error {
	b := &a.Binding
	switch {
	case len(b.Nonce) > MaxNonce:
		return fmt.Errorf("deepquote: nonce of %d bytes (at most %d)", len(b.Nonce), MaxNonce)
	case b.VTPMPCRs>>24 != 0:
		return fmt.Errorf("deepquote: vTPM PCR bitmap %#x names PCRs above 23", b.VTPMPCRs)
	case BankSize(b.VTPMBank) == 0:
		return fmt.Errorf("deepquote: vTPM PCR bank %#04x (want SHA-1 %#04x or SHA-256 %#04x)", b.VTPMBank, BankSHA1, BankSHA256)
	case a.HWFamily != HW20 && a.HWFamily != HW12:
		return fmt.Errorf("deepquote: hardware family %d", a.HWFamily)
	case len(a.Attest) == 0 || len(a.Attest) > MaxAttest || len(a.Signature) == 0 || len(a.Signature) > MaxSignature:
		return fmt.Errorf("deepquote: quote of %d bytes, signature of %d", len(a.Attest), len(a.Signature))
	case a.HWFamily == HW20 && (a.HWPCRs != 0 || a.HWPCRValues != nil):
		return errors.New("deepquote: hardware PCR values with a TPM 2.0 quote")
	case a.HWFamily == HW12:
		return a.check12()
	}
	return nil
}

// check12 checks a HW12 quote's sizes: a TPM_QUOTE_INFO, an RSA-2048
// signature, at least one PCR of 0..23 and a SHA-1 value for each.
func (a *Answer) check12() error {
	switch {
	case len(a.Attest) != QuoteInfo12Size || len(a.Signature) != Signature12Size:
		return fmt.Errorf("deepquote: TPM 1.2 quote of %d bytes (want %d), signature of %d (want %d)", len(a.Attest), QuoteInfo12Size, len(a.Signature), Signature12Size)
	case a.HWPCRs == 0 || a.HWPCRs>>24 != 0:
		return fmt.Errorf("deepquote: hardware PCR bitmap %#x (want PCRs of 0..23)", a.HWPCRs)
	case len(a.HWPCRValues) != bits.OnesCount32(a.HWPCRs):
		return fmt.Errorf("deepquote: %d hardware PCR values for %d PCRs", len(a.HWPCRValues), bits.OnesCount32(a.HWPCRs))
	}
	for _, v := range a.HWPCRValues {
		if len(v) != pcrValue12Size {
			return fmt.Errorf("deepquote: a hardware PCR value of %d bytes", len(v))
		}
	}
	return nil
}

func (q *Bundle) check() error {
	if err := q.Answer.check(); err != nil {
		return err
	}
	if n := bits.OnesCount32(q.Binding.VTPMPCRs); len(q.VTPMPCRValues) != n {
		return fmt.Errorf("deepquote: %d vTPM PCR values for %d PCRs", len(q.VTPMPCRValues), n)
	}
	for _, v := range q.VTPMPCRValues {
		if len(v) != BankSize(q.Binding.VTPMBank) {
			return fmt.Errorf("deepquote: a vTPM PCR value of %d bytes", len(v))
		}
	}
	return nil
}

// ErrFormat is wrapped by ParseAnswer's and Parse's errors.
var ErrFormat = errors.New("deepquote: not a deep quote")

// ParseAnswer decodes what Answer.Marshal encodes, and nothing else.
func ParseAnswer(p []byte) (*Answer, error) {
	var a Answer
	if err := parse(p, answerMagic, &a, nil); err != nil {
		return nil, err
	}
	return &a, nil
}

// Parse decodes what Bundle.Marshal encodes, and nothing else.
func Parse(p []byte) (*Bundle, error) {
	var q Bundle
	if err := parse(p, bundleMagic, &q.Answer, &q.VTPMPCRValues); err != nil {
		return nil, err
	}
	if err := q.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return &q, nil
}

// parse reads an Answer, and with values set a Bundle's PCR values too.
func parse(p []byte, magic string, a *Answer, values *[][]byte) error {
	bad := func(f string, args ...any) error {
		return fmt.Errorf("%w: "+f, append([]any{ErrFormat}, args...)...)
	}
	if len(p) > MaxBundle {
		return bad("%d bytes (at most %d)", len(p), MaxBundle)
	}
	if !bytes.HasPrefix(p, []byte(magic)) {
		return bad("no %q magic", magic)
	}
	r := reader(p[len(magic):])
	b := &a.Binding
	n, ok := r.u8()
	if !ok || int(n) > MaxNonce {
		return bad("nonce length")
	}
	b.Nonce = bytes.Clone(r.take(int(n)))
	copy(b.VTPM[:], r.take(16))
	copy(b.Group[:], r.take(16))
	b.VTPMBank, _ = r.u16()
	b.VTPMPCRs, _ = r.u32()
	copy(b.VTPMPCRDigest[:], r.take(DigestSize))
	copy(b.SAAKey[:], r.take(DigestSize))
	b.ListSeq, _ = r.u64()
	copy(b.List[:], r.take(DigestSize))
	if r == nil {
		return bad("truncated in the binding")
	}
	if b.VTPMPCRs>>24 != 0 || BankSize(b.VTPMBank) == 0 {
		return bad("vTPM PCR bitmap %#x of bank %#04x", b.VTPMPCRs, b.VTPMBank)
	}
	if values != nil {
		for range bits.OnesCount32(b.VTPMPCRs) {
			*values = append(*values, bytes.Clone(r.take(BankSize(b.VTPMBank))))
		}
	}
	a.HWFamily, _ = r.u8()
	al, _ := r.u16()
	a.Attest = bytes.Clone(r.take(int(al)))
	if a.HWFamily == HW12 {
		a.HWPCRs, _ = r.u32()
		if a.HWPCRs>>24 != 0 {
			return bad("hardware PCR bitmap %#x", a.HWPCRs)
		}
		for range bits.OnesCount32(a.HWPCRs) {
			a.HWPCRValues = append(a.HWPCRValues, bytes.Clone(r.take(pcrValue12Size)))
		}
	}
	sl, _ := r.u16()
	a.Signature = bytes.Clone(r.take(int(sl)))
	if r == nil || len(r) != 0 {
		return bad("truncated, or bytes after the signature")
	}
	if err := a.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return nil
}

// reader takes big-endian fields; once short it is nil for good, and
// every later take returns nil.
type reader []byte

func (r *reader) take(n int) []byte {
	if *r == nil || len(*r) < n {
		*r = nil
		return nil
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	if len(*r) == 0 {
		*r = []byte{}
	}
	return v
}

func (r *reader) u8() (uint8, bool) {
	v := r.take(1)
	if v == nil {
		return 0, false
	}
	return v[0], true
}

func (r *reader) u16() (uint16, bool) {
	v := r.take(2)
	if v == nil {
		return 0, false
	}
	return binary.BigEndian.Uint16(v), true
}

func (r *reader) u32() (uint32, bool) {
	v := r.take(4)
	if v == nil {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

func (r *reader) u64() (uint64, bool) {
	v := r.take(8)
	if v == nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// The guest's command (docs/deep-quote.md): a TPM 2.0 vendor command
// (Part 2, 6.5.2: TPM_CC_V, bit 29, marks one) numbered as vtpmmgr's
// TPM_ORD_DeepQuote is, the vendor bit with the quote's code (TPM2_Quote,
// 0x158). Request, after the 10-byte header with tag TPM_ST_NO_SESSIONS:
// u16 nonceSize ‖ nonce (at most MaxNonce) ‖ u32 bitmap of the vTPM's
// SHA-256 PCRs to bind. Response: u16 size ‖ the Bundle.
const CommandCode = 0x20000158

// EncodeCommand builds the guest's deep quote command.
func EncodeCommand(nonce []byte, pcrs uint32) ([]byte, error) {
	if len(nonce) > MaxNonce || pcrs>>24 != 0 {
		return nil, fmt.Errorf("deepquote: nonce of %d bytes (at most %d) or PCR bitmap %#x beyond PCR 23", len(nonce), MaxNonce, pcrs)
	}
	b := make([]byte, 10, 16+len(nonce))
	binary.BigEndian.PutUint16(b, 0x8001) // TPM_ST_NO_SESSIONS
	binary.BigEndian.PutUint32(b[6:], CommandCode)
	b = binary.BigEndian.AppendUint16(b, uint16(len(nonce)))
	b = append(b, nonce...)
	b = binary.BigEndian.AppendUint32(b, pcrs)
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b, nil
}

// DecodeCommand reads a deep quote command's parameters (after the
// header); ok false when they are malformed.
func DecodeCommand(params []byte) (nonce []byte, pcrs uint32, ok bool) {
	if len(params) < 2 {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(params))
	if n > MaxNonce || len(params) != 2+n+4 {
		return nil, 0, false
	}
	pcrs = binary.BigEndian.Uint32(params[2+n:])
	return params[2 : 2+n], pcrs, pcrs>>24 == 0
}

// The TPM 1.2 personality's command (TPM 1.2 Part 2, 17: the vendor bit
// 0x02000000 with TPM_ORD_Quote), vtpm-stubdom's TPM_ORD_DeepQuote in
// its request's shape. Request, after the 10-byte header with tag
// TPM_TAG_RQU_COMMAND: TPM_NONCE (20 bytes) ‖ TPM_PCR_SELECTION of the
// vTPM's PCRs (u16 sizeOfSelect ≤ 3 ‖ the bitmap, byte i bit j = PCR
// 8i+j) ‖ a TPM_PCR_SELECTION of hardware PCRs that must select none
// (the group's configuration names the hardware PCRs quoted, never the
// guest) ‖ optionally u32 extraInfoFlags, which must be 0. Response,
// tag TPM_TAG_RSP_COMMAND: u32 size ‖ the Bundle, whose vTPM PCRs are of
// BankSHA1.
const CommandCode12 = 0x02000016

// EncodeCommand12 builds the TPM 1.2 guest's deep quote command.
func EncodeCommand12(nonce []byte, pcrs uint32) ([]byte, error) {
	if len(nonce) != 20 || pcrs>>24 != 0 {
		return nil, fmt.Errorf("deepquote: a TPM 1.2 deep quote takes a 20-byte nonce (TPM_NONCE), not %d bytes, and PCRs of 0..23 (bitmap %#x)", len(nonce), pcrs)
	}
	b := make([]byte, 10, 10+20+5+2)
	binary.BigEndian.PutUint16(b, 0x00C1) // TPM_TAG_RQU_COMMAND
	binary.BigEndian.PutUint32(b[6:], CommandCode12)
	b = append(b, nonce...)
	b = append(b, 0, 3, byte(pcrs), byte(pcrs>>8), byte(pcrs>>16))
	b = append(b, 0, 0) // no hardware PCRs
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b, nil
}

// DecodeCommand12 reads a TPM 1.2 deep quote command's parameters (after
// the header); ok false when they are malformed or ask for what the
// command does not give.
func DecodeCommand12(params []byte) (nonce []byte, pcrs uint32, ok bool) {
	r := reader(params)
	nonce = r.take(20)
	sel := func() (uint32, bool) {
		n, ok := r.u16()
		if !ok || n > 3 {
			return 0, false
		}
		var m uint32
		for i, c := range r.take(int(n)) {
			m |= uint32(c) << (8 * i)
		}
		return m, r != nil
	}
	pcrs, ok1 := sel()
	hw, ok2 := sel()
	if !ok1 || !ok2 || hw != 0 {
		return nil, 0, false
	}
	if len(r) == 4 {
		if flags, _ := r.u32(); flags != 0 {
			return nil, 0, false
		}
	}
	if len(r) != 0 {
		return nil, 0, false
	}
	return nonce, pcrs, true
}

// DecodeResponse returns the Bundle in a deep quote response of either
// family, or the TPM response code as an error.
func DecodeResponse(rsp []byte) (*Bundle, error) {
	if len(rsp) < 10 || int(binary.BigEndian.Uint32(rsp[2:])) != len(rsp) {
		return nil, fmt.Errorf("deepquote: a response of %d bytes that is not framed", len(rsp))
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		return nil, &ResponseError{Code: rc}
	}
	p, size := rsp[10:], 2
	if binary.BigEndian.Uint16(rsp) == 0x00C4 { // TPM_TAG_RSP_COMMAND: u32 size
		size = 4
	}
	if len(p) < size || (size == 2 && int(binary.BigEndian.Uint16(p)) != len(p)-2) ||
		(size == 4 && int64(binary.BigEndian.Uint32(p)) != int64(len(p)-4)) {
		return nil, fmt.Errorf("%w: the response's size field does not match", ErrFormat)
	}
	return Parse(p[size:])
}

// ResponseError is a deep quote command the vTPM refused.
type ResponseError struct{ Code uint32 }

func (e *ResponseError) Error() string {
	switch e.Code {
	case 0x0A: // TPM_BAD_ORDINAL
		return "deepquote: TPM_BAD_ORDINAL: this TPM 1.2 gives no deep quotes (not a xenvtpm vTPM, or it has no manager)"
	case 0x03: // TPM_BAD_PARAMETER
		return "deepquote: TPM_BAD_PARAMETER: the vTPM refused the command's parameters"
	case 0x800:
		return "deepquote: TPM_RETRY: asked too often; try again in a second"
	case 0x09:
		return "deepquote: TPM_FAIL: the manager refused or failed (the vTPM domain's console says why)"
	case 0x143:
		return "deepquote: TPM_RC_COMMAND_CODE: this TPM gives no deep quotes (not a xenvtpm vTPM, or it has no manager)"
	case 0x922:
		return "deepquote: TPM_RC_RETRY: asked too often; try again in a second"
	case 0x923:
		return "deepquote: TPM_RC_NV_UNAVAILABLE: the manager refused or failed (the vTPM domain's console says why)"
	}
	return fmt.Sprintf("deepquote: the TPM answered %#x", e.Code)
}
