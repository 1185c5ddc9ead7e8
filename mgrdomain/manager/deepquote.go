package manager

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/ratelimit"
)

// Deep quotes (docs/deep-quote.md). A vTPM asks (DEEP_QUOTE) with its
// verifier's nonce and its own PCRs' digest; the manager adds what only it
// knows — the vTPM's UUID as Xen gave it, its group, the digests of the
// group's SAA key and installed list — and has the hardware TPM quote the
// digest of all of it (deepquote.Binding) with the group's attestation
// key over the hardware PCRs of the group's matching approval. The key
// is re-derived in the hardware TPM for each quote (hwtpm.AKTemplate);
// dom0 gets its public part, and certifies it against the hardware EK,
// with GROUP_AK and GROUP_ACTIVATE. TPM 1.2 hardware has its own
// (deepquote12.go).

// attester is what the hardware offers for deep quotes: TPM 2.0
// (hwtpm.TPM).
type attester interface {
	AKPublic(group [16]byte) (*hwtpm.AK, error)
	EKPublic() (*hwtpm.EK, error)
	ActivateCredential(group [16]byte, credentialBlob, secret []byte) ([]byte, error)
	Quote(group [16]byte, qualifyingData []byte, pcrs []uint) (attest, signature []byte, err error)
}

var _ attester = (*hwtpm.TPM)(nil)

// Each vTPM may have quoteBurst deep quotes at once, then one per
// quoteEvery: a hardware quote holds the hardware TPM for milliseconds
// (a primary key's derivation, a signature), and a guest must not keep
// other guests' saves waiting.
const (
	quoteBurst = 4
	quoteEvery = time.Second
)

// defaultQuotePCRs are quoted for a group without an approval list when
// sealpcrs=none: the PC Client firmware PCRs.
var defaultQuotePCRs = []uint{0, 1, 2, 3, 4, 5, 6, 7}

// attesters returns the hardware's deep quote operations: TPM 2.0's or
// TPM 1.2's (the other nil).
func (m *Manager) attesters() (attester, attester12, error) {
	switch hw := m.hw.(type) {
	case attester12:
		return nil, hw, nil
	case attester:
		return hw, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: the hardware TPM offers no deep quotes", proto.ErrUnsupported)
}

// DeepQuote answers a vTPM's DEEP_QUOTE with a deepquote.Answer.
func (m *Manager) DeepQuote(uuid [16]byte, req proto.DeepQuote) ([]byte, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	hw, hw12, err := m.attesters()
	if err != nil {
		return nil, err
	}
	rec, err := m.savedRecord(uuid)
	if err != nil {
		return nil, err
	}
	now := m.clk.Now()
	m.mu.Lock()
	bk := m.quoteLimit[uuid]
	if bk == nil {
		if m.quoteLimit == nil {
			m.quoteLimit = map[[16]byte]*ratelimit.Bucket{}
		}
		bk = ratelimit.NewBucket(quoteBurst, ratelimit.Rate{N: 1, Per: quoteEvery}, now)
		m.quoteLimit[uuid] = bk
	}
	if !bk.Has(now) {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: vTPM %x asks for deep quotes faster than %d at once and one per %v", proto.ErrBusy, uuid, quoteBurst, quoteEvery)
	}
	bk.Spend(now)
	g := m.groups[rec.Group]
	b := deepquote.Binding{Nonce: req.Nonce, VTPM: uuid, Group: g.uuid, VTPMBank: req.Bank, VTPMPCRs: req.PCRs, VTPMPCRDigest: req.PCRDigest}
	if g.key != nil {
		b.SAAKey = sha256.Sum256(g.key)
	}
	if g.list != nil {
		b.List, b.ListSeq = sha256.Sum256(g.list), g.seq
	}
	pcrs := m.quotePCRs(g)
	m.mu.Unlock()
	var a *deepquote.Answer
	if hw12 != nil {
		if a, err = m.quote12(hw12, g.id, b, pcrs); err != nil {
			return nil, err
		}
	} else {
		attest, sig, err := hw.Quote(g.uuid, b.QualifyingData(), pcrs)
		if err != nil {
			return nil, fmt.Errorf("manager: hardware quote: %w", err)
		}
		a = &deepquote.Answer{Binding: b, HWFamily: deepquote.HW20, Attest: attest, Signature: sig}
	}
	out, err := a.Marshal()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.stats.DeepQuotes++
	m.mu.Unlock()
	return out, nil
}

// quotePCRs are the hardware PCRs a deep quote of group g covers: those
// of the approval the host matched at start (a verifier compares the
// quote's digest with it), else the PCRs the storage key is sealed to
// (mu held).
func (m *Manager) quotePCRs(g *group) []uint {
	if g.signed != nil && g.match >= 0 && g.match < len(g.signed.List.Approvals) {
		return g.signed.List.Approvals[g.match].PCRs
	}
	if len(m.cfg.SealPCRs) > 0 {
		return m.cfg.SealPCRs
	}
	return defaultQuotePCRs
}

// GroupAK returns GROUP_AK's answer for group id: on TPM 2.0 u8 family
// (2) ‖ u16 ‖ AK TPMT_PUBLIC ‖ u16 ‖ EK TPMT_PUBLIC ‖ u16 ‖ EK
// certificate; on TPM 1.2 groupAK12's. The family byte comes first so
// that dom0 tells the forms apart without guessing from their contents.
func (m *Manager) GroupAK(id uint32) ([]byte, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	hw, hw12, err := m.attesters()
	if err != nil {
		return nil, err
	}
	if hw12 != nil {
		return m.groupAK12(hw12, id)
	}
	u, err := m.groupUUID(id)
	if err != nil {
		return nil, err
	}
	ak, err := hw.AKPublic(u)
	if err != nil {
		return nil, err
	}
	ek, err := hw.EKPublic()
	if err != nil {
		return nil, err
	}
	out, err := appendFields([]byte{deepquote.HW20}, ak.Public, ek.Public, ek.Cert)
	if err != nil {
		return nil, err
	}
	if len(out) > proto.MaxMessage-proto.HeaderSize {
		return nil, fmt.Errorf("manager: GROUP_AK answer of %d bytes does not fit a message (the EK certificate is %d bytes)", len(out), len(ek.Cert))
	}
	return out, nil
}

// appendFields appends each field as u16 length ‖ bytes (GROUP_AK's
// answer).
func appendFields(out []byte, fields ...[]byte) ([]byte, error) {
	for _, f := range fields {
		if len(f) > 0xFFFF {
			return nil, errors.New("manager: GROUP_AK field too long")
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out, nil
}

// GroupActivate runs TPM2_ActivateCredential for group's attestation
// key, or on TPM 1.2 TPM_ActivateIdentity (activate12).
func (m *Manager) GroupActivate(req proto.GroupActivate) ([]byte, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	hw, hw12, err := m.attesters()
	if err != nil {
		return nil, err
	}
	if hw12 != nil {
		return m.activate12(hw12, req)
	}
	u, err := m.groupUUID(req.Group)
	if err != nil {
		return nil, err
	}
	out, err := hw.ActivateCredential(u, req.CredentialBlob, req.Secret)
	if errors.Is(err, hwtpm.ErrCredential) {
		return nil, fmt.Errorf("%w: %w", proto.ErrBadRequest, err)
	}
	return out, err
}

func (m *Manager) groupUUID(id uint32) ([16]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[id]
	if g == nil {
		return [16]byte{}, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	return g.uuid, nil
}

var _ proto.Attester = (*Manager)(nil)
