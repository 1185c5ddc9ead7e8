package manager

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"math"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
)

// Sealing to group 0's approvals. Once group 0 has an approval list, the
// storage key is released by the hardware TPM only in a configuration
// group 0's SAA approved, and sealpcrs= no longer applies:
//
//   - TPM 2.0: one blob whose policy is TPM2_PolicyAuthorize by the SAA's
//     key. An upgrade is a new signed list: installing it changes no blob,
//     and moves the approval counter to the list's sequence, after which
//     the TPM refuses every approval of an older list, on any disk copy.
//   - TPM 1.2: a blob per approved configuration, TPM_Seal'd to its
//     composite hash; installing a list reseals the key to each. TPM 1.2
//     cannot revoke an older blob: a copy of the disk taken before still
//     unseals in a configuration the older list approved.
//
// The header carries the list and the blobs: they must be readable
// before the key is, and the header's MAC, checked after unsealing,
// covers them.

// approver20 is the TPM 2.0 hardware's sealing to SAA approvals.
type approver20 interface {
	ResealAuthorized(key []byte, saaPub crypto.PublicKey) (*hwtpm.SealedBlob, error)
	UnsealAuthorized(b *hwtpm.SealedBlob, seq uint64, approvals []hwtpm.Approval) ([]byte, error)
	ApprovalCounter() (uint64, error)
	PeekApprovalCounter() (uint64, bool, error)
	AdvanceApprovals(seq uint64) error
}

// approver12 is the TPM 1.2 hardware's sealing to a composite hash.
type approver12 interface {
	SealComposite(key []byte, pcrs []uint, digestAtRelease [20]byte) (*hwtpm.SealedBlob, error)
}

var (
	_ approver20 = (*hwtpm.TPM)(nil)
	_ approver12 = (*hwtpm.TPM12)(nil)
)

// ErrNotApproved: group 0's SAA approved none of the configurations the
// host is in; the storage key stays sealed.
var ErrNotApproved = errors.New("manager: this host's configuration is not approved by group 0's SAA")

// sealedToGroup0 reports whether the key is sealed to group 0's approvals.
func (m *Manager) sealedToGroup0() bool { return len(m.hdr.list) > 0 }

// nextSeq is the lowest sequence number g's next list may carry, and the
// highest: above the installed one, and for group 0 on TPM 2.0 not below
// the approval counter (a list below it would never unseal) nor more
// than hwtpm.MaxApprovalJump above it (the counter moves one NV write a
// step). It writes nothing: GROUP_NEW of group 0 defined the counter; if
// it is missing, the bounds are the installed list's.
func (m *Manager) nextSeq(g *group) (lo, hi uint64, err error) {
	lo, hi = g.seq+1, math.MaxUint64-1
	if a, ok := m.hw.(approver20); ok && g.id == 0 {
		c, defined, err := a.PeekApprovalCounter()
		if err != nil {
			return 0, 0, fmt.Errorf("manager: reading the approval counter: %w", err)
		}
		if defined {
			lo, hi = max(lo, c), c+hwtpm.MaxApprovalJump
		}
	}
	return lo, hi, nil
}

// defineApprovals makes sure the approval counter exists (TPM 2.0), so
// the next sequence numbers group 0 takes are known before an SAA signs
// one: GROUP_NEW of group 0 calls it.
func (m *Manager) defineApprovals() error {
	if a, ok := m.hw.(approver20); ok {
		if _, err := a.ApprovalCounter(); err != nil {
			return fmt.Errorf("manager: defining the approval counter: %w", err)
		}
	}
	return nil
}

func hwApprovals(s *saa.Signed) []hwtpm.Approval {
	out := make([]hwtpm.Approval, len(s.List.Approvals))
	for i, a := range s.List.Approvals {
		out[i] = hwtpm.Approval{PCRs: a.PCRs, Digest: a.Digest, Sig: a.TPMSig}
	}
	return out
}

// sealToApprovals seals the storage key to g's (group 0's) list and
// writes it into the header.
func (m *Manager) sealToApprovals(g *group) error {
	var blobs []*hwtpm.SealedBlob
	var retire *hwtpm.SealedBlob
	switch hw := m.hw.(type) {
	case approver20:
		cur, err := hwtpm.UnmarshalSealedBlob(m.hdr.blob)
		if err != nil {
			return err
		}
		if m.sealedToGroup0() && bytes.Equal(m.groups[0].key, g.key) {
			blobs = []*hwtpm.SealedBlob{cur} // the same SAA: the blob stays
			break
		}
		b, err := hw.ResealAuthorized(m.key, g.pub.Crypto())
		if err != nil {
			return fmt.Errorf("manager: sealing the storage key to group 0's SAA: %w", err)
		}
		blobs, retire = []*hwtpm.SealedBlob{b}, b
	case approver12:
		for _, a := range g.signed.List.Approvals {
			b, err := hw.SealComposite(m.key, a.PCRs, [20]byte(a.Digest))
			if err != nil {
				return fmt.Errorf("manager: sealing the storage key to approved PCRs %s: %w", hwtpm.FormatPCRs(a.PCRs), err)
			}
			blobs = append(blobs, b)
		}
	default:
		return errors.New("manager: this hardware cannot seal to approvals")
	}
	if err := m.writeHeaders(m.key, m.hdr.gen, m.hdr.formatCounter, blobs, g.list); err != nil {
		return err
	}
	if retire != nil {
		if err := m.hw.Retire(retire); err != nil {
			return fmt.Errorf("manager: sealed to the SAA, but retiring the older blobs: %w", err)
		}
	}
	m.logf("manager: storage key sealed to group 0's approvals (list sequence %d, %d configurations)", g.seq, len(g.signed.List.Approvals))
	return nil
}

// revokeBelow makes the TPM refuse approvals of lists older than seq
// (TPM 2.0; nothing on TPM 1.2).
func (m *Manager) revokeBelow(seq uint64) error {
	a, ok := m.hw.(approver20)
	if !ok {
		return nil
	}
	if err := a.AdvanceApprovals(seq); err != nil {
		return fmt.Errorf("manager: list installed, but revoking older approvals: %w (the next start retries)", err)
	}
	return nil
}

// unsealApproved unseals the key a version 2 header seals to group 0's
// approvals.
func (m *Manager) unsealApproved(blobs []*hwtpm.SealedBlob) ([]byte, error) {
	s, err := saa.ParseList(m.hdr.list)
	if err != nil {
		return nil, fmt.Errorf("%w: approval list in the header: %w", ErrBadDisk, err)
	}
	switch hw := m.hw.(type) {
	case approver20:
		return hw.UnsealAuthorized(blobs[0], s.List.Seq, hwApprovals(s))
	case approver12:
		if len(blobs) != len(s.List.Approvals) {
			return nil, fmt.Errorf("%w: %d blobs for %d approvals", ErrBadDisk, len(blobs), len(s.List.Approvals))
		}
		i, err := m.matchApproval(s)
		if err != nil {
			return nil, err
		}
		if i < 0 {
			return nil, fmt.Errorf("%w (list sequence %d, %d configurations)", ErrNotApproved, s.List.Seq, len(s.List.Approvals))
		}
		return m.hw.Unseal(blobs[i])
	}
	return nil, errors.New("manager: this hardware cannot unseal from approvals")
}

// reconcileGroup0 finishes an update of group 0 a power cut interrupted:
// the header (written first) holds a newer list than the store, or the
// approval counter is still below the list's sequence.
func (m *Manager) reconcileGroup0() error {
	if !m.sealedToGroup0() {
		if g0 := m.groups[0]; g0 != nil && g0.seq > 0 {
			// The store says group 0's list sealed the key, the header
			// holds a key sealed otherwise: a header from before the
			// list was put back (on TPM 1.2 nothing retired it).
			return fmt.Errorf("%w: the store holds group 0's approval list (sequence %d) but the header's key is not sealed to it: the header was replaced", ErrBadDisk, g0.seq)
		}
		return nil
	}
	s, err := saa.ParseList(m.hdr.list)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadDisk, err)
	}
	g0 := m.groups[0]
	if g0.seq > s.List.Seq {
		return fmt.Errorf("%w: the header's approval list (sequence %d) is older than the store's group 0 list (sequence %d): the header was replaced", ErrBadDisk, s.List.Seq, g0.seq)
	}
	if g0.seq < s.List.Seq {
		m.logf("manager: group 0's list sequence %d in the header is newer than the store's %d (an update was cut): finishing it", s.List.Seq, g0.seq)
		g := &group{id: 0, uuid: g0.uuid, key: g0.key, list: m.hdr.list, seq: s.List.Seq}
		if g0.key == nil {
			return fmt.Errorf("%w: the header holds group 0's list but the store has no SAA key for it", ErrBadDisk)
		}
		if err := g.parse(); err != nil {
			return err
		}
		var b store.Batch
		putGroup(&b, g0, g)
		m.cmu.Lock()
		err := m.adminCommit(&b)
		m.cmu.Unlock()
		if err != nil {
			return err
		}
		if err := m.checkApproved(g); err != nil {
			return err
		}
		m.groups[0] = g
	}
	if a, ok := m.hw.(approver20); ok {
		c, err := a.ApprovalCounter()
		if err != nil {
			return err
		}
		if c < s.List.Seq {
			// An update was cut before its revocation: finish it. If the
			// TPM refuses now, the manager still serves (the list itself
			// unsealed) and says so; the next start tries again.
			m.logf("manager: approval counter %d below group 0's list sequence %d: revoking the older lists now", c, s.List.Seq)
			if err := m.revokeBelow(s.List.Seq); err != nil {
				m.logf("%v", err)
			}
		}
	}
	return nil
}
