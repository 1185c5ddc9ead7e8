package manager

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// saaKey makes an SAA signing key and its wire form.
func saaKey(t testing.TB, alg string) (crypto.Signer, []byte) {
	t.Helper()
	k, err := saa.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	var wire []byte
	switch p := k.Public().(type) {
	case *rsa.PublicKey:
		wire = p.N.FillBytes(make([]byte, 256))
	case *ecdsa.PublicKey:
		e, err := p.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		wire = e.Bytes()
	}
	return k, wire
}

// approvalFor approves the given PCR values (ascending PCRs).
func approvalFor(t testing.TB, f saa.Family, pcrs []uint, vals [][]byte) saa.Approval {
	t.Helper()
	if f == saa.Family12 {
		c, err := saa.Composite12(pcrs, vals)
		if err != nil {
			t.Fatal(err)
		}
		return saa.Approval{PCRs: pcrs, Digest: c[:]}
	}
	return saa.Approval{PCRs: pcrs, Digest: saa.PCRDigest(vals)}
}

func signList(t testing.TB, k crypto.Signer, f saa.Family, group [16]byte, seq uint64, as ...saa.Approval) []byte {
	t.Helper()
	b, err := saa.SignList(saa.ConfigList{Family: f, Group: group, Seq: seq, Approvals: as}, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// extended is a PCR value after one extend with zeros (swtpmtest.ExtendPCR
// on the SHA-256 bank, ExtendPCR12 on TPM 1.2).
func extended(f saa.Family, v []byte) []byte {
	if f == saa.Family12 {
		s := sha1.Sum(append(slices.Clone(v), make([]byte, 20)...))
		return s[:]
	}
	s := sha256.Sum256(append(slices.Clone(v), make([]byte, 32)...))
	return s[:]
}

func pcrValues(t testing.TB, hw Hardware, pcrs []uint) [][]byte {
	t.Helper()
	v, err := hw.(pcrReader).PCRValues(pcrs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestGroupsAndVTPMs: the administrator's flow without approvals, and
// what persists.
func TestGroupsAndVTPMs(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	cfg := Config{NoAutocreate: true, Admins: []uint32{0}}
	m := openMgr(t, d, hwOf(t, s), cfg)
	if ids, _ := m.GroupList(); !slices.Equal(ids, []uint32{0}) {
		t.Fatalf("groups on a fresh manager: %v", ids)
	}
	g0, err := m.GroupShow(0)
	if err != nil || len(g0.SAAKey) != 0 || g0.Seq != 0 || g0.Flags&proto.GroupApproved == 0 {
		t.Fatalf("group 0 at first: %+v, %v", g0, err)
	}
	_, rsaWire := saaKey(t, "rsa")
	_, ecWire := saaKey(t, "ecdsa")
	u0, id, err := m.GroupNew(proto.GroupNew{SAAKey: rsaWire})
	if err != nil || id != 0 || u0 != g0.UUID {
		t.Fatalf("first GROUP_NEW = %x %d %v; want group 0 (%x)", u0, id, err, g0.UUID)
	}
	u1, id, err := m.GroupNew(proto.GroupNew{SAAKey: ecWire})
	if err != nil || id != 1 || u1 == u0 {
		t.Fatalf("second GROUP_NEW = %x %d %v", u1, id, err)
	}
	if _, _, err := m.GroupNew(proto.GroupNew{SAAKey: make([]byte, 65)}); !errors.Is(err, proto.ErrKeyType) {
		t.Fatalf("GROUP_NEW with a point off the curve = %v", err)
	}

	// autocreate=0: an unknown UUID is refused; VTPM_NEW makes it known.
	if err := m.SaveHashKey(uuidN(5), blobN(5, 1)); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("save of an unknown UUID with autocreate off = %v", err)
	}
	want := uuidN(5)
	u, err := m.VTPMNew(1, &want)
	if err != nil || u != want {
		t.Fatalf("VTPMNew = %x, %v", u, err)
	}
	if _, err := m.VTPMNew(1, &want); !errors.Is(err, proto.ErrInUse) {
		t.Fatalf("VTPMNew of an existing UUID = %v", err)
	}
	if _, err := m.LoadHashKey(want); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("load before the first save = %v (a new vTPM has no key yet)", err)
	}
	if err := m.SaveHashKey(want, blobN(5, 1)); err != nil {
		t.Fatal(err)
	}
	mustLoad(t, m, want, blobN(5, 1))
	rnd, err := m.VTPMNew(0, nil)
	if err != nil || rnd[6]>>4 != 4 {
		t.Fatalf("VTPMNew random = %x, %v", rnd, err)
	}
	if _, err := m.VTPMNew(7, nil); !errors.Is(err, proto.ErrNoGroup) {
		t.Fatalf("VTPMNew in no group = %v", err)
	}
	var reserved [16]byte
	copy(reserved[:], groupMagic)
	if _, err := m.VTPMNew(0, &reserved); !errors.Is(err, proto.ErrBadRequest) {
		t.Fatalf("VTPMNew with a reserved UUID = %v", err)
	}
	if l, err := m.VTPMList(1); err != nil || len(l) != 1 || l[0] != want {
		t.Fatalf("VTPMList(1) = %x, %v", l, err)
	}
	if err := m.GroupDel(1); !errors.Is(err, proto.ErrInUse) {
		t.Fatalf("GroupDel of a group with a vTPM = %v", err)
	}
	if err := m.GroupDel(0); !errors.Is(err, proto.ErrInUse) {
		t.Fatalf("GroupDel(0) = %v", err)
	}

	// Restart: groups and records persist.
	m.Close()
	s.Restart()
	m = openMgr(t, d, hwOf(t, s), cfg)
	if ids, _ := m.GroupList(); !slices.Equal(ids, []uint32{0, 1}) {
		t.Fatalf("groups after restart: %v", ids)
	}
	if g, err := m.GroupShow(1); err != nil || g.UUID != u1 || !bytes.Equal(g.SAAKey, ecWire) || g.VTPMs != 1 {
		t.Fatalf("group 1 after restart: %+v, %v", g, err)
	}
	mustLoad(t, m, want, blobN(5, 1))
	if st := m.Stats(); st.Records != 2 {
		t.Fatalf("Stats.Records = %d, want the 2 vTPMs (group records not counted)", st.Records)
	}

	// A connected vTPM is not deleted; a stopped one is, and is then
	// unknown.
	m.Connected(want, true)
	if err := m.VTPMDel(want); !errors.Is(err, proto.ErrInUse) {
		t.Fatalf("VTPMDel of a connected vTPM = %v", err)
	}
	m.Connected(want, false)
	if err := m.VTPMDel(want); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveHashKey(want, blobN(5, 2)); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("save after VTPMDel = %v", err)
	}
	if err := m.VTPMDel(want); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("second VTPMDel = %v", err)
	}
	if err := m.GroupDel(1); err != nil {
		t.Fatal(err)
	}
	if ids, _ := m.GroupList(); !slices.Equal(ids, []uint32{0}) {
		t.Fatalf("groups after GroupDel(1): %v", ids)
	}
}

// TestAdminRule: management requests only from admin= domains, through
// the real dispatcher.
func TestAdminRule(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	m := openMgr(t, newMemDisk(512, diskBytes), hwOf(t, s), Config{Admins: []uint32{0}})
	h := &proto.Handler{Backend: m}
	req := []byte{0x01, 0xC2, 0, 0, 0, 10, 0x02, 0, 0x01, 0x01} // GROUP_LIST
	for _, c := range []struct {
		peer proto.PeerInfo
		ok   bool
	}{
		{proto.PeerInfo{DomID: 0, UUID: uuidN(1)}, true},
		{proto.PeerInfo{DomID: 3, UUID: uuidN(1)}, false},
		{proto.PeerInfo{DomID: 0}, false},
	} {
		_, err := proto.ParseResponse(h.Handle(req, c.peer), proto.TagMgmtReq)
		if (err == nil) != c.ok {
			t.Errorf("GROUP_LIST from %v: %v", c.peer, err)
		}
	}
	var reserved [16]byte
	copy(reserved[:], groupMagic)
	if err := m.Authorize(proto.PeerInfo{DomID: 4, UUID: reserved}, proto.Header{Tag: proto.TagVTPMReq}); !errors.Is(err, proto.ErrForbidden) {
		t.Fatalf("a peer with a reserved UUID: %v", err)
	}
}

// upgradeFlow runs the upgrade story on one hardware family.
func upgradeFlow(t *testing.T, f saa.Family, start func() (Hardware, func(pcr uint), func() Hardware)) {
	hw, extend, restart := start()
	d := newMemDisk(512, diskBytes)
	cfg := Config{Admins: []uint32{0}}
	m := openMgr(t, d, hw, cfg)
	k, wire := saaKey(t, "rsa")
	other, _ := saaKey(t, "rsa")
	g, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
	pcrs := []uint{0, 2, 4, 7}
	now := pcrValues(t, hw, pcrs)
	info, _ := m.GroupShow(0)
	seq := info.NextSeq
	if err := m.GroupUpdate(0, signList(t, k, f, g, seq, approvalFor(t, f, pcrs, now))); err != nil {
		t.Fatalf("GroupUpdate: %v", err)
	}
	if info, _ = m.GroupShow(0); info.Seq != seq || info.Flags&(proto.GroupSealed|proto.GroupApproved) != proto.GroupSealed|proto.GroupApproved {
		t.Fatalf("group 0 after update: %+v", info)
	}
	beforeUpgrade := d.image()

	// A restart in the approved configuration unseals.
	m.Close()
	hw = restart()
	m = openMgr(t, d, hw, cfg)
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	m.Close()

	// "New firmware": PCR 4 changes; the manager refuses.
	hw = restart()
	extend(4)
	if _, err := Open(d, hw, cfg); !errors.Is(err, ErrUnseal) {
		t.Fatalf("Open in an unapproved configuration = %v", err)
	}

	// The upgrade, done right: in the old configuration, the SAA signs
	// the new one (with a higher sequence), the administrator installs
	// it, and the host reboots into the new firmware.
	hw = restart()
	m = openMgr(t, d, hw, cfg)
	up := slices.Clone(now)
	up[2] = extended(f, now[2])
	newList := signList(t, k, f, g, seq+1, approvalFor(t, f, pcrs, up))
	for name, bad := range map[string][]byte{
		"an older list":             signList(t, k, f, g, seq, approvalFor(t, f, pcrs, up)),
		"a list of another key":     signList(t, other, f, g, seq+1, approvalFor(t, f, pcrs, up)),
		"a list for another group":  signList(t, k, f, uuidN(9), seq+1, approvalFor(t, f, pcrs, up)),
		"a list with a flipped bit": append(newList[:len(newList)-1:len(newList)-1], newList[len(newList)-1]^1),
	} {
		if err := m.GroupUpdate(0, bad); err == nil {
			t.Errorf("GroupUpdate with %s accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if err := m.GroupUpdate(0, newList); err != nil {
		t.Fatalf("GroupUpdate(new configuration): %v", err)
	}
	if err := m.GroupUpdate(0, signList(t, k, f, g, seq, approvalFor(t, f, pcrs, now))); !errors.Is(err, proto.ErrStale) {
		t.Fatalf("re-installing the older sequence = %v", err)
	}
	m.Close()
	hw = restart()
	extend(4)
	m = openMgr(t, d, hw, cfg)
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	m.Close()

	// The old configuration no longer unseals: on TPM 2.0 the TPM refuses
	// the older list's approvals, even from a disk copy that holds them.
	hw = restart()
	d2 := newMemDisk(512, diskBytes)
	d2.restore(beforeUpgrade)
	_, err = Open(d2, hw, cfg)
	switch {
	case f == saa.Family20 && !errors.Is(err, hwtpm.ErrRevoked):
		t.Fatalf("Open of a disk copy with the revoked list, old configuration = %v; want ErrRevoked", err)
	case f == saa.Family12 && !errors.Is(err, ErrRollback):
		// TPM 1.2 cannot revoke the older blob: only the rollback
		// counter stops the copy.
		t.Fatalf("Open of an older disk copy on TPM 1.2 = %v; want ErrRollback", err)
	}
	t.Logf("old copy in the old configuration: %v", err)
	if _, err := Open(d, hw, cfg); !errors.Is(err, ErrUnseal) {
		t.Fatalf("Open of the current disk in the old configuration = %v", err)
	}
}

func TestUpgradeTPM2(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	upgradeFlow(t, saa.Family20, func() (Hardware, func(uint), func() Hardware) {
		return hwOf(t, s), func(p uint) { swtpmtest.ExtendPCR(t, s.TPM(), p) }, func() Hardware { s.Restart(); return hwOf(t, s) }
	})
}

func TestUpgradeTPM12(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, owner12, srk12)
	upgradeFlow(t, saa.Family12, func() (Hardware, func(uint), func() Hardware) {
		return hw12(t, s), func(p uint) { swtpmtest.ExtendPCR12(t, s, uint32(p)) }, func() Hardware { s.Restart(); return hw12(t, s) }
	})
}

// TestGroupUpdatePowerCut: a power cut (cutDisk: the sector it meets is
// torn) at every sector write of a group update leaves the old group or the new one, never a mix, and the
// manager opens on what is left (for group 0 also the header's list and
// the TPM's approval counter agree once it has).
func TestGroupUpdatePowerCut(t *testing.T) {
	for _, c := range []struct {
		id uint32
		ss int
	}{{0, 512}, {0, 4096}, {1, 4096}} {
		id := c.id
		for cut := 0; ; cut++ {
			s := swtpmtest.StartSwtpm(t, "")
			hw := hwOf(t, s)
			d := &cutDisk{memDisk: newMemDisk(c.ss, diskBytes), left: 1 << 30}
			m := openMgr(t, d, hw, Config{})
			k, wire := saaKey(t, "ecdsa")
			g, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
			if err == nil && id == 1 {
				g, _, err = m.GroupNew(proto.GroupNew{SAAKey: wire})
			}
			if err != nil {
				t.Fatal(err)
			}
			pcrs := []uint{0, 16}
			vals := pcrValues(t, hw, pcrs)
			info, _ := m.GroupShow(id)
			seq := info.NextSeq
			if err := m.GroupUpdate(id, signList(t, k, saa.Family20, g, seq, approvalFor(t, saa.Family20, pcrs, vals))); err != nil {
				t.Fatal(err)
			}
			if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
				t.Fatal(err)
			}
			next := slices.Clone(vals)
			next[1] = extended(saa.Family20, vals[1])
			l2 := signList(t, k, saa.Family20, g, seq+1, approvalFor(t, saa.Family20, pcrs, vals), approvalFor(t, saa.Family20, pcrs, next))
			d.left = cut
			err = m.GroupUpdate(id, l2)
			done := !d.cut
			d.left, d.cut = 1<<30, false // power is back
			m.Close()
			if done && err != nil {
				t.Fatalf("group %d: update without a cut: %v", id, err)
			}
			s.Restart()
			hw = hwOf(t, s)
			m, err = Open(d, hw, Config{})
			if err != nil {
				t.Fatalf("group %d, cut after %d writes: Open: %v", id, cut, err)
			}
			got, err := m.GroupShow(id)
			if err != nil || (got.Seq != seq && got.Seq != seq+1) || len(got.Approvals) != int(got.Seq-seq)+1 {
				t.Fatalf("group %d, cut after %d writes: %+v, %v", id, cut, got, err)
			}
			if id == 0 {
				// The header (what the TPM unseals with) and the store agree.
				h, err := saa.ParseList(m.hdr.list)
				if err != nil || h.List.Seq != got.Seq {
					t.Fatalf("cut after %d writes: the store says sequence %d, the header's list %+v, %v", cut, got.Seq, h, err)
				}
			}
			if id == 0 && got.Seq == seq+1 {
				if c, err := hw.ApprovalCounter(); err != nil || c != seq+1 {
					t.Fatalf("cut after %d writes: group 0 at sequence %d but the approval counter is %d, %v", cut, got.Seq, c, err)
				}
			}
			mustLoad(t, m, uuidN(1), blobN(1, 1))
			m.Close()
			s.Stop()
			if done {
				t.Logf("group %d, %d-byte sectors: update takes %d sector writes; every cut leaves the old or the new list", id, c.ss, cut)
				break
			}
		}
	}
}

// FuzzGroupRecord: a group's stored encoding decodes without panic, and
// what decodes encodes back to the same bytes; the same bytes as the EK
// public area of a vTPM's CERTIFY_EK are refused or accepted, never a
// panic.
func FuzzGroupRecord(f *testing.F) {
	g := &group{id: 3, uuid: [16]byte{1, 2}, key: make([]byte, 65), seq: 7, list: []byte("XVTPMCFG")}
	f.Add(g.marshal())
	f.Add((&group{}).marshal())
	ca := *g
	ca.caKey, ca.caCert = make([]byte, 138), make([]byte, 400)
	f.Add(ca.marshal())
	aik := ca
	aik.aikBlob, aik.aikPub, aik.aikBinding = make([]byte, 559), make([]byte, 284), make([]byte, 256)
	f.Add(aik.marshal())
	aik.caKey, aik.caCert = nil, nil
	f.Add(aik.marshal())
	rsaPub, eccPub := vtpmEKs(f)
	f.Add(rsaPub)
	f.Add(eccPub)
	f.Fuzz(func(t *testing.T, b []byte) {
		// The same bytes as a vTPM's CERTIFY_EK public area (ekcert.go).
		if k, err := ekPublicKey(b); err == nil && k == nil {
			t.Fatal("ekPublicKey accepted a key it did not return")
		}
		g, err := unmarshalGroup(b)
		if err != nil {
			return
		}
		if re := g.marshal(); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding %x differs from %x", re, b)
		}
	})
}

// TestApprovalJumpRefused: a group 0 list further above the approval
// counter than the TPM can be moved in one update is refused before
// anything is written; the manager keeps its list and starts again.
// (It used to be written, then its revocation failed, leaving the manager
// with the old list in memory and a start that failed every time.)
func TestApprovalJumpRefused(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hw, Config{})
	k, wire := saaKey(t, "ecdsa")
	g, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	pcrs := []uint{0}
	a := approvalFor(t, saa.Family20, pcrs, pcrValues(t, hw, pcrs))
	info, _ := m.GroupShow(0)
	seq := info.NextSeq
	if err := m.GroupUpdate(0, signList(t, k, saa.Family20, g, seq, a)); err != nil {
		t.Fatal(err)
	}
	far := seq + hwtpm.MaxApprovalJump + 1
	if err := m.GroupUpdate(0, signList(t, k, saa.Family20, g, far, a)); !errors.Is(err, proto.ErrBadRequest) {
		t.Fatalf("a list %d above the counter = %v, want ErrBadRequest", far-seq, err)
	}
	if err := m.GroupUpdate(0, signList(t, k, saa.Family20, g, math.MaxUint64, a)); !errors.Is(err, proto.ErrBadRequest) {
		t.Fatalf("a list with the largest sequence = %v, want ErrBadRequest", err)
	}
	if info, _ := m.GroupShow(0); info.Seq != seq {
		t.Fatalf("group 0 at sequence %d after refused updates, want %d", info.Seq, seq)
	}
	if err := m.GroupUpdate(0, signList(t, k, saa.Family20, g, seq+hwtpm.MaxApprovalJump, a)); err != nil {
		t.Fatalf("a list %d above: %v", hwtpm.MaxApprovalJump, err)
	}
	m.Close()
	s.Restart()
	m = openMgr(t, d, hwOf(t, s), Config{})
	if info, _ := m.GroupShow(0); info.Seq != seq+hwtpm.MaxApprovalJump {
		t.Fatalf("after restart group 0 at %d", info.Seq)
	}
}

// TestGroupShowWritesNothing: showing group 0 reads the approval counter
// without defining it (that needs owner authorisation and an NV write);
// registering group 0's SAA defines it, so the next sequence shown is
// the TPM's.
func TestGroupShowWritesNothing(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{})
	if _, err := m.GroupShow(0); err != nil {
		t.Fatal(err)
	}
	if _, defined, err := hw.PeekApprovalCounter(); err != nil || defined {
		t.Fatalf("after GROUP_SHOW the approval counter is defined=%v (%v)", defined, err)
	}
	_, wire := saaKey(t, "rsa")
	if _, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire}); err != nil {
		t.Fatal(err)
	}
	c, defined, err := hw.PeekApprovalCounter()
	info, _ := m.GroupShow(0)
	if err != nil || !defined || info.NextSeq != max(c, 1) {
		t.Fatalf("after GROUP_NEW: counter %d defined=%v (%v); next sequence shown %d", c, defined, err, info.NextSeq)
	}
}

// TestReplacedHeaderRefused: the header from before group 0's list, put
// back over today's store, is refused (on TPM 1.2 its blob still
// unseals: nothing retires it), instead of dropping the SAA's sealing.
func TestReplacedHeaderRefused(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, owner12, srk12)
	hw := hw12(t, s)
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hw, Config{})
	k, wire := saaKey(t, "rsa")
	g, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	oldHeader := slices.Clone(d.image()[:headerBytes])
	pcrs := []uint{0, 7}
	if err := m.GroupUpdate(0, signList(t, k, saa.Family12, g, 1, approvalFor(t, saa.Family12, pcrs, pcrValues(t, hw, pcrs)))); err != nil {
		t.Fatal(err)
	}
	m.Close()
	img := d.image()
	copy(img, oldHeader)
	d.restore(img)
	if _, err := Open(d, hw, Config{}); !errors.Is(err, ErrBadDisk) {
		t.Fatalf("Open with the header from before the list = %v, want ErrBadDisk", err)
	}
}

// TestOwedIncrementOnce: the rollback counter's increment owed after
// back-pressure is made once, by a management commit or by the
// committer, never by both (which left the hardware a step ahead of the
// store: a false ROLLBACK at the next start).
func TestOwedIncrementOnce(t *testing.T) {
	hw := &nvHW{}
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hw, Config{BusyAfter: 200 * time.Millisecond})
	hw.setBusy(1<<30, nvRate)
	if err := m.SaveHashKey(uuidN(1), blobN(1, 0)); !errors.Is(err, proto.ErrBusy) {
		t.Fatalf("save under lasting back-pressure = %v", err)
	}
	if !m.Stats().Owed {
		t.Fatal("the counter is not owed")
	}
	hw.setBusy(0, nil)
	hw.entered, hw.gate = make(chan struct{}, 8), make(chan struct{})
	made := make(chan error, 1)
	go func() { _, err := m.VTPMNew(0, nil); made <- err }()
	<-hw.entered // VTPM_NEW makes the owed increment, holding the commit lock
	saved := make(chan error, 1)
	go func() { saved <- m.SaveHashKey(uuidN(2), blobN(2, 0)) }()
	time.Sleep(100 * time.Millisecond) // the committer finds the counter owed too
	close(hw.gate)
	if err := <-made; err != nil {
		t.Fatal(err)
	}
	if err := <-saved; err != nil {
		t.Fatal(err)
	}
	if c, _ := hw.ReadCounter(); c != m.Stats().Counter {
		t.Fatalf("hardware counter %d, store %d", c, m.Stats().Counter)
	}
	m.Close()
	openMgr(t, d, hw, Config{}).Close()
}
