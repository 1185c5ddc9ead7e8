package proto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
)

// fakeAdmin records what reached it and answers from a small table.
type fakeAdmin struct {
	*fakeBackend
	calls []string
	vtpms [][16]byte
	err   error
}

func (a *fakeAdmin) note(f string, v ...any) error {
	a.calls = append(a.calls, fmt.Sprintf(f, v...))
	return a.err
}
func (a *fakeAdmin) GroupList() ([]uint32, error) { return []uint32{0, 3}, a.note("list") }
func (a *fakeAdmin) GroupNew(m GroupNew) ([16]byte, uint32, error) {
	return [16]byte{9}, 3, a.note("new %x %d", m.CADigest[:2], len(m.SAAKey))
}
func (a *fakeAdmin) GroupDel(id uint32) error { return a.note("del %d", id) }
func (a *fakeAdmin) GroupUpdate(id uint32, l []byte) error {
	return a.note("update %d %x", id, l)
}
func (a *fakeAdmin) GroupShow(id uint32) (*GroupInfo, error) {
	return &GroupInfo{UUID: [16]byte{7}, SAAKey: []byte{4, 5}, Seq: 2, NextSeq: 3, Family: 2,
		Approvals: []ApprovalInfo{{PCRs: 0x15, Digest: []byte{1, 2, 3}}}, VTPMs: 4, Flags: GroupSealed}, a.note("show %d", id)
}
func (a *fakeAdmin) VTPMList(g uint32) ([][16]byte, error) { return a.vtpms, a.note("vlist %d", g) }
func (a *fakeAdmin) VTPMNew(g uint32, u *[16]byte) ([16]byte, error) {
	if u != nil {
		return *u, a.note("vnew %d %x", g, u[:1])
	}
	return [16]byte{0xAA}, a.note("vnew %d random", g)
}
func (a *fakeAdmin) VTPMDel(u [16]byte) error { return a.note("vdel %x", u[:1]) }

func mgmt(ord uint32, p []byte) []byte { return raw(TagMgmtReq, uint32(HeaderSize+len(p)), ord, p) }

func TestManagementDispatch(t *testing.T) {
	a := &fakeAdmin{fakeBackend: newFake()}
	for i := range 300 {
		a.vtpms = append(a.vtpms, [16]byte{byte(i >> 8), byte(i)})
	}
	h := &Handler{Backend: a}
	admin := PeerInfo{DomID: 0, UUID: [16]byte{1}}
	u32 := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, x)
		}
		return b
	}
	uuid := bytes.Repeat([]byte{0x42}, 16)
	cases := []struct {
		name string
		req  []byte
		body string // hex of the answer's parameters
		call string
	}{
		{"GROUP_LIST", mgmt(OrdGroupList, nil), "000000020000000000000003", "list"},
		{"GROUP_NEW rsa", mgmt(OrdGroupNew, append(bytes.Repeat([]byte{0xCA}, 20), make([]byte, SAAKeyRSA)...)), "09000000000000000000000000000000" + "00000003", "new caca 256"},
		{"GROUP_NEW p256", mgmt(OrdGroupNew, append(make([]byte, 20), make([]byte, SAAKeyP256)...)), "09000000000000000000000000000000" + "00000003", "new 0000 65"},
		{"GROUP_DEL", mgmt(OrdGroupDel, u32(5)), "", "del 5"},
		{"GROUP_UPDATE", mgmt(OrdGroupUpdate, append(u32(1), 0xAB, 0xCD)), "", "update 1 abcd"},
		{"GROUP_SHOW", mgmt(OrdGroupShow, u32(0)), "07000000000000000000000000000000" + "0002" + "0405" + "0000000000000002" + "0000000000000003" + "02" + "01" + "00000015" + "03" + "010203" + "00000004" + "02", "show 0"},
		{"VTPM_NEW random", mgmt(OrdVTPMNew, u32(2)), "aa000000000000000000000000000000", "vnew 2 random"},
		{"VTPM_NEW uuid", mgmt(OrdVTPMNew, append(u32(2), uuid...)), "42424242424242424242424242424242", "vnew 2 42"},
		{"VTPM_NEW uuid NUL (manage-vtpmmgr.pl)", mgmt(OrdVTPMNew, append(append(u32(2), uuid...), 0)), "42424242424242424242424242424242", "vnew 2 42"},
		{"VTPM_DEL", mgmt(OrdVTPMDel, uuid), "", "vdel 42"},
		{"VTPM_DEL NUL", mgmt(OrdVTPMDel, append(slices.Clone(uuid), 0)), "", "vdel 42"},
	}
	for _, c := range cases {
		a.calls = nil
		p, err := ParseResponse(h.Handle(c.req, admin), TagMgmtReq)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if fmt.Sprintf("%x", p) != c.body {
			t.Errorf("%s: answer %x, want %s", c.name, p, c.body)
		}
		if len(a.calls) != 1 || a.calls[0] != c.call {
			t.Errorf("%s: calls %q, want %q", c.name, a.calls, c.call)
		}
	}

	// VTPM_LIST pages: total, then at most MaxVTPMList UUIDs from offset.
	for _, off := range []uint32{0, 254, 299, 300, 1 << 31} {
		p, err := ParseResponse(h.Handle(mgmt(OrdVTPMList, u32(0, off)), admin), TagMgmtReq)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if off < 300 {
			want = min(300-int(off), MaxVTPMList)
		}
		if binary.BigEndian.Uint32(p) != 300 || len(p) != 4+16*want {
			t.Errorf("VTPM_LIST offset %d: total %d, %d bytes; want 300 and %d UUIDs", off, binary.BigEndian.Uint32(p), len(p), want)
		}
		if want > 0 && !bytes.Equal(p[4:20], a.vtpms[off][:]) {
			t.Errorf("VTPM_LIST offset %d starts with %x", off, p[4:20])
		}
	}
}

func TestManagementRefused(t *testing.T) {
	a := &fakeAdmin{fakeBackend: newFake()}
	h := &Handler{Backend: a}
	admin := PeerInfo{DomID: 0, UUID: [16]byte{1}}
	malformed := [][]byte{
		mgmt(OrdGroupList, []byte{0}),
		mgmt(OrdGroupNew, make([]byte, 20+64)),
		mgmt(OrdGroupNew, make([]byte, 20+SAAKeyRSA+1)),
		mgmt(OrdGroupDel, make([]byte, 3)),
		mgmt(OrdGroupUpdate, make([]byte, 4)),
		mgmt(OrdGroupShow, nil),
		mgmt(OrdVTPMList, make([]byte, 4)),
		mgmt(OrdVTPMNew, make([]byte, 19)),
		mgmt(OrdVTPMNew, append(make([]byte, 20), 1)),
		mgmt(OrdVTPMDel, make([]byte, 15)),
		mgmt(OrdVTPMDel, append(make([]byte, 16), 'x')),
	}
	for _, req := range malformed {
		if _, rc := code(t, h.Handle(req, admin)); rc != TPMBadParameter {
			t.Errorf("%x: rc %d, want TPM_BAD_PARAMETER", req, rc)
		}
	}
	if len(a.calls) != 0 {
		t.Fatalf("malformed requests reached the admin: %q", a.calls)
	}
	// A peer outside dom0 (the fake's rule) never reaches the admin.
	if _, rc := code(t, h.Handle(mgmt(OrdGroupDel, []byte{0, 0, 0, 1}), PeerInfo{DomID: 7, UUID: [16]byte{2}})); rc != TPMAuthFail || len(a.calls) != 0 {
		t.Errorf("non-admin GROUP_DEL: rc %d, calls %q", rc, a.calls)
	}
	// The admin's errors map to their codes.
	for err, rc := range map[error]uint32{
		ErrNoGroup: TPMBadIndex, ErrInUse: TPMAreaLocked, ErrStale: TPMBadCounter,
		ErrBadSignature: TPMAuthFail, ErrKeyType: TPMBadKeyProperty, ErrBadRequest: TPMBadParameter,
		ErrNotFound: TPMKeyNotFound, ErrNoSpace: TPMNoSpace,
	} {
		a.err = fmt.Errorf("wrapped: %w", err)
		if _, got := code(t, h.Handle(mgmt(OrdGroupDel, []byte{0, 0, 0, 1}), admin)); got != rc {
			t.Errorf("%v: rc %#x, want %#x", err, got, rc)
		}
	}
}

// FuzzManagement feeds arbitrary management requests to a handler with an
// Admin: no panic, answers framed and within MaxMessage, and a request the
// decoder refuses never reaches the admin.
func FuzzManagement(f *testing.F) {
	for _, s := range [][]byte{
		mgmt(OrdGroupList, nil),
		mgmt(OrdGroupNew, make([]byte, 20+SAAKeyRSA)),
		mgmt(OrdGroupNew, make([]byte, 20+SAAKeyP256)),
		mgmt(OrdGroupDel, []byte{0, 0, 0, 1}),
		mgmt(OrdGroupUpdate, []byte{0, 0, 0, 0, 'X', 'V'}),
		mgmt(OrdGroupShow, []byte{0, 0, 0, 0}),
		mgmt(OrdVTPMList, make([]byte, 8)),
		mgmt(OrdVTPMNew, make([]byte, 21)),
		mgmt(OrdVTPMDel, make([]byte, 17)),
	} {
		f.Add(s)
	}
	a := &fakeAdmin{fakeBackend: newFake()}
	for i := range 400 {
		a.vtpms = append(a.vtpms, [16]byte{byte(i >> 8), byte(i)})
	}
	h := &Handler{Backend: a}
	admin := PeerInfo{DomID: 0, UUID: [16]byte{1}}
	f.Fuzz(func(t *testing.T, req []byte) {
		a.calls = nil
		resp := h.Handle(req, admin)
		if len(resp) < HeaderSize || len(resp) > MaxMessage || binary.BigEndian.Uint32(resp[2:6]) != uint32(len(resp)) {
			t.Fatalf("bad answer framing: %x", resp)
		}
		if _, _, err := DecodeRequest(req); err != nil && len(a.calls) != 0 {
			t.Fatalf("refused request (%v) reached the admin: %q", err, a.calls)
		}
	})
}
