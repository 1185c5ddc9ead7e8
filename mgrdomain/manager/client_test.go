package manager_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/xenvtpm/xenvtpm/internal/mgrtest"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/manager"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// TestAgainstManager: dom0's client (toolstack/mgmt) against the real manager (swtpm as its
// hardware TPM) through the real dispatcher: every ordinal, paging over
// the page limit, and the codes of the refusals.
func TestAgainstManager(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw, err := hwtpm.Open(s.TPM(), hwtpm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.Open(&mgrtest.Disk{Data: make([]byte, 4<<20)}, hw, manager.Config{NoAutocreate: true, Admins: []uint32{0}})
	if err != nil {
		t.Fatal(err)
	}
	h := &proto.Handler{Backend: m}
	c := mgmt.Client{T: mgrtest.Peer{H: h, Info: proto.PeerInfo{DomID: 0, UUID: [16]byte{0xd0}}}}
	key, err := saa.GenerateKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := saa.NewPublicKey(key.Public())
	g0, id, err := c.GroupNew(pub)
	if err != nil || id != 0 {
		t.Fatalf("GroupNew = %x %d %v", g0, id, err)
	}
	g1, id, err := c.GroupNew(pub)
	if err != nil || id != 1 {
		t.Fatalf("second GroupNew = %x %d %v", g1, id, err)
	}
	if ids, err := c.GroupList(); err != nil || !slices.Equal(ids, []uint32{0, 1}) {
		t.Fatalf("GroupList = %v, %v", ids, err)
	}
	if ca, err := c.GroupCACert(0); err != nil || !ca.IsCA {
		t.Fatalf("GroupCACert(0): %v", err)
	}
	info, err := c.GroupShow(0)
	if err != nil || info.UUID != g0 || !info.Key.Equal(pub) || info.Seq != 0 || info.Sealed() {
		t.Fatalf("GroupShow(0) = %+v, %v", info, err)
	}
	vals, err := hw.PCRValues([]uint{0, 7})
	if err != nil {
		t.Fatal(err)
	}
	list, err := saa.SignList(saa.ConfigList{Family: saa.Family20, Group: g0, Seq: info.NextSeq,
		Approvals: []saa.Approval{{PCRs: []uint{0, 7}, Digest: saa.PCRDigest(vals)}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GroupUpdate(0, list); err != nil {
		t.Fatal(err)
	}
	info, err = c.GroupShow(0)
	if err != nil || info.Seq == 0 || !info.Sealed() || !info.PCRsMatch() || len(info.Approvals) != 1 || !slices.Equal(info.Approvals[0].PCRs, []uint{0, 7}) {
		t.Fatalf("GroupShow(0) after update = %+v, %v", info, err)
	}
	if err := c.GroupUpdate(0, list); err != nil {
		t.Fatalf("re-installing the same list: %v", err)
	}
	if err := c.GroupUpdate(1, list); !mgmt.IsCode(err, proto.TPMAuthFail) {
		t.Fatalf("group 0's list into group 1 = %v, want TPM_AUTHFAIL", err)
	}

	// More vTPMs than one VTPM_LIST page.
	var made [][16]byte
	for range mgmt.MaxListPage + 10 {
		u, err := c.VTPMNew(1, nil)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, u)
	}
	slices.SortFunc(made, func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) })
	got, err := c.VTPMList(1)
	if err != nil || !slices.Equal(got, made) {
		t.Fatalf("VTPMList(1): %d UUIDs, %v; want the %d made", len(got), err, len(made))
	}
	if err := c.GroupDel(1); !mgmt.IsCode(err, proto.TPMAreaLocked) {
		t.Fatalf("GroupDel of a group with vTPMs = %v", err)
	}
	for _, u := range made {
		if err := c.VTPMDel(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.VTPMDel(made[0]); !mgmt.IsCode(err, proto.TPMKeyNotFound) {
		t.Fatalf("VTPMDel twice = %v", err)
	}
	if err := c.GroupDel(1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GroupShow(1); !mgmt.IsCode(err, proto.TPMBadIndex) {
		t.Fatalf("GroupShow of a deleted group = %v", err)
	}
	// Not an admin domain.
	other := mgmt.Client{T: mgrtest.Peer{H: h, Info: proto.PeerInfo{DomID: 5, UUID: [16]byte{0xd5}}}}
	var e *mgmt.Error
	if _, err := other.GroupList(); !errors.As(err, &e) || e.Code != proto.TPMAuthFail {
		t.Fatalf("GroupList from domain 5 = %v", err)
	}
}
