package mgmt

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// fakeManager answers the management ordinals from a table, as the
// manager domain does, and records the requests. It checks each
// request's framing the way the manager's proto.ParseRequest does.
type fakeManager struct {
	t        testing.TB
	groups   map[uint32]*fakeGroup
	nextID   uint32
	vtpms    map[[16]byte]uint32 // UUID → group
	pageSize int                 // VTPM_LIST page (MaxListPage if 0)
	reqs     []*proto.Request
	code     uint32 // if non-zero, every answer
}

type fakeGroup struct {
	uuid [16]byte
	key  []byte
	seq  uint64
	list *saa.Signed
}

func newFake(t testing.TB) *fakeManager {
	return &fakeManager{t: t, groups: map[uint32]*fakeGroup{}, vtpms: map[[16]byte]uint32{}}
}

func rsp(code uint32, body []byte) []byte {
	b, err := proto.EncodeResponse(proto.TagMgmtRsp, code, body)
	if err != nil {
		panic(err)
	}
	return b
}

func (f *fakeManager) Send(cmd []byte) ([]byte, error) {
	req, err := proto.ParseRequest(cmd)
	if err != nil {
		f.t.Fatalf("client sent a malformed request: %v", err)
	}
	if req.Tag != proto.TagMgmtReq {
		f.t.Fatalf("request tag %#x", req.Tag)
	}
	f.reqs = append(f.reqs, req)
	if f.code != 0 {
		return rsp(f.code, nil), nil
	}
	return f.serve(req), nil
}

func (f *fakeManager) uuid(n uint32) [16]byte {
	var u [16]byte
	binary.BigEndian.PutUint32(u[12:], n)
	u[0] = 0xAA
	return u
}

func (f *fakeManager) serve(req *proto.Request) []byte {
	p := req.Params
	be := binary.BigEndian
	group := func() (*fakeGroup, uint32, bool) {
		if len(p) < 4 {
			return nil, 0, false
		}
		id := be.Uint32(p)
		g, ok := f.groups[id]
		return g, id, ok
	}
	switch req.Code {
	case proto.OrdGroupList:
		var ids []uint32
		for id := range f.groups {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		b := be.AppendUint32(nil, uint32(len(ids)))
		for _, id := range ids {
			b = be.AppendUint32(b, id)
		}
		return rsp(0, b)
	case proto.OrdGroupNew:
		if len(p) < 20 || !bytes.Equal(p[:20], make([]byte, 20)) {
			return rsp(proto.TPMBadParameter, nil)
		}
		if _, err := saa.ParsePublicKey(p[20:]); err != nil {
			return rsp(0x28, nil)
		}
		id := f.nextID
		f.nextID++
		g := &fakeGroup{uuid: f.uuid(0x1000 + id), key: bytes.Clone(p[20:])}
		f.groups[id] = g
		return rsp(0, be.AppendUint32(g.uuid[:], id))
	case proto.OrdGroupDel:
		_, id, ok := group()
		if !ok {
			return rsp(2, nil)
		}
		for _, gid := range f.vtpms {
			if gid == id {
				return rsp(0x3C, nil)
			}
		}
		delete(f.groups, id)
		return rsp(0, nil)
	case proto.OrdGroupUpdate:
		g, _, ok := group()
		if !ok {
			return rsp(2, nil)
		}
		s, err := saa.ParseList(p[4:])
		if err != nil || s.List.Group != g.uuid {
			return rsp(proto.TPMBadParameter, nil)
		}
		k, _ := saa.ParsePublicKey(g.key)
		if s.Verify(k) != nil {
			return rsp(proto.TPMAuthFail, nil)
		}
		if s.List.Seq <= g.seq {
			return rsp(0x45, nil)
		}
		g.seq, g.list = s.List.Seq, s
		return rsp(0, nil)
	case proto.OrdGroupShow:
		g, id, ok := group()
		if !ok || len(p) != 4 {
			return rsp(2, nil)
		}
		b := append([]byte(nil), g.uuid[:]...)
		b = be.AppendUint16(b, uint16(len(g.key)))
		b = append(b, g.key...)
		b = be.AppendUint64(b, g.seq)
		b = be.AppendUint64(b, g.seq+1)
		if g.list == nil {
			b = append(b, 0, 0)
		} else {
			b = append(b, byte(g.list.List.Family), byte(len(g.list.List.Approvals)))
			for _, a := range g.list.List.Approvals {
				m, _ := saa.PCRMask(a.PCRs)
				b = be.AppendUint32(b, m)
				b = append(b, byte(len(a.Digest)))
				b = append(b, a.Digest...)
			}
		}
		var n uint32
		for _, gid := range f.vtpms {
			if gid == id {
				n++
			}
		}
		b = be.AppendUint32(b, n)
		flags := byte(0)
		if id == 0 {
			flags = FlagAutoCreate | FlagSealed
		}
		return rsp(0, append(b, flags))
	case proto.OrdVTPMList:
		_, id, ok := group()
		if !ok || len(p) != 8 {
			return rsp(2, nil)
		}
		var us [][16]byte
		for u, gid := range f.vtpms {
			if gid == id {
				us = append(us, u)
			}
		}
		slices.SortFunc(us, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
		off := int(be.Uint32(p[4:]))
		ps := f.pageSize
		if ps == 0 {
			ps = MaxListPage
		}
		b := be.AppendUint32(nil, uint32(len(us)))
		for i := off; i < len(us) && i < off+ps; i++ {
			b = append(b, us[i][:]...)
		}
		return rsp(0, b)
	case proto.OrdVTPMNew:
		_, id, ok := group()
		if !ok {
			return rsp(2, nil)
		}
		var u [16]byte
		switch len(p) {
		case 4:
			u = f.uuid(uint32(len(f.vtpms)) + 1)
		case 20:
			copy(u[:], p[4:])
		default:
			return rsp(proto.TPMBadParameter, nil)
		}
		if _, dup := f.vtpms[u]; dup {
			return rsp(proto.TPMBadParameter, nil)
		}
		f.vtpms[u] = id
		return rsp(0, u[:])
	case proto.OrdVTPMDel:
		if len(p) != 16 {
			return rsp(proto.TPMBadParameter, nil)
		}
		u := [16]byte(p)
		if _, ok := f.vtpms[u]; !ok {
			return rsp(proto.TPMKeyNotFound, nil)
		}
		delete(f.vtpms, u)
		return rsp(0, nil)
	}
	return rsp(proto.TPMBadOrdinal, nil)
}

var (
	keyOnce sync.Once
	testKey crypto.Signer
)

func signer(t testing.TB) crypto.Signer {
	keyOnce.Do(func() {
		var err error
		if testKey, err = saa.GenerateKey("ecdsa"); err != nil {
			panic(err)
		}
	})
	return testKey
}

func pub(t testing.TB) saa.PublicKey {
	k, err := saa.NewPublicKey(signer(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signedList(t testing.TB, group [16]byte, seq uint64) []byte {
	l := saa.ConfigList{Family: saa.Family20, Group: group, Seq: seq,
		Approvals: []saa.Approval{{PCRs: []uint{0, 7}, Digest: bytes.Repeat([]byte{7}, 32)}}}
	b, err := saa.SignList(l, signer(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientGroups(t *testing.T) {
	f := newFake(t)
	c := Client{T: f}
	u0, id0, err := c.GroupNew(pub(t))
	if err != nil || id0 != 0 {
		t.Fatalf("GroupNew = %x, %d, %v", u0, id0, err)
	}
	// The request: 20 zero bytes of CA digest, then the key.
	if r := f.reqs[0]; r.Code != proto.OrdGroupNew || !bytes.Equal(r.Params[20:], pub(t).Bytes()) || len(r.Params) != 20+65 {
		t.Fatalf("GROUP_NEW request % x", r.Params)
	}
	_, id1, err := c.GroupNew(pub(t))
	if err != nil || id1 != 1 {
		t.Fatalf("second GroupNew = %d, %v", id1, err)
	}
	ids, err := c.GroupList()
	if err != nil || !slices.Equal(ids, []uint32{0, 1}) {
		t.Fatalf("GroupList = %v, %v", ids, err)
	}
	g, err := c.GroupShow(0)
	if err != nil {
		t.Fatal(err)
	}
	if g.UUID != u0 || !g.Key.Equal(pub(t)) || g.Seq != 0 || g.NextSeq != 1 || g.Family != 0 || !g.AutoCreate() || !g.Sealed() || g.PCRsMatch() {
		t.Fatalf("GroupShow = %+v", g)
	}
	if err := c.GroupUpdate(0, signedList(t, u0, 3)); err != nil {
		t.Fatalf("GroupUpdate: %v", err)
	}
	g, err = c.GroupShow(0)
	if err != nil || g.Seq != 3 || g.NextSeq != 4 || g.Family != saa.Family20 || len(g.Approvals) != 1 || !slices.Equal(g.Approvals[0].PCRs, []uint{0, 7}) {
		t.Fatalf("GroupShow after update = %+v, %v", g, err)
	}
	// An older list: TPM_BAD_COUNTER, explained.
	err = c.GroupUpdate(0, signedList(t, u0, 2))
	if !IsCode(err, CodeBadCounter) || !strings.Contains(err.Error(), "GROUP_UPDATE: TPM_BAD_COUNTER") || !strings.Contains(err.Error(), "older list") {
		t.Fatalf("older list: %v", err)
	}
	// A malformed list never reaches the manager.
	n := len(f.reqs)
	if err := c.GroupUpdate(0, []byte("XVTPMCFG")); err == nil || len(f.reqs) != n {
		t.Fatalf("malformed list: %v, %d requests sent", err, len(f.reqs)-n)
	}
	if err := c.GroupDel(1); err != nil {
		t.Fatal(err)
	}
	if err := c.GroupDel(1); !IsCode(err, CodeBadIndex) || !strings.Contains(err.Error(), "no such group") {
		t.Fatalf("GroupDel(gone) = %v", err)
	}
	if _, _, err := c.GroupNew(saa.PublicKey{}); err == nil {
		t.Fatal("GroupNew without a key succeeded")
	}
}

func TestClientVTPMs(t *testing.T) {
	f := newFake(t)
	f.pageSize = 3
	c := Client{T: f}
	if _, _, err := c.GroupNew(pub(t)); err != nil {
		t.Fatal(err)
	}
	var made [][16]byte
	for range 7 {
		u, err := c.VTPMNew(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, u)
	}
	want := [16]byte{0xBB, 1}
	u, err := c.VTPMNew(0, &want)
	if err != nil || u != want {
		t.Fatalf("VTPMNew(uuid) = %x, %v", u, err)
	}
	if r := f.reqs[len(f.reqs)-1]; !bytes.Equal(r.Params, append([]byte{0, 0, 0, 0}, want[:]...)) {
		t.Fatalf("VTPM_NEW request % x", r.Params)
	}
	made = append(made, want)
	n := len(f.reqs)
	got, err := c.VTPMList(0)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(made, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(got, made) {
		t.Fatalf("VTPMList = %x, want %x", got, made)
	}
	if pages := len(f.reqs) - n; pages != 3 {
		t.Fatalf("VTPMList took %d requests for 8 UUIDs in pages of 3", pages)
	}
	if err := c.GroupDel(0); !IsCode(err, CodeAreaLocked) || !strings.Contains(err.Error(), "still has vTPMs") {
		t.Fatalf("GroupDel(with vTPMs) = %v", err)
	}
	if err := c.VTPMDel(want); err != nil {
		t.Fatal(err)
	}
	if err := c.VTPMDel(want); !IsCode(err, CodeKeyNotFound) || !strings.Contains(err.Error(), "no such vTPM") {
		t.Fatalf("VTPMDel(gone) = %v", err)
	}
	// An empty group lists in one request.
	if _, id, err := c.GroupNew(pub(t)); err != nil {
		t.Fatal(err)
	} else if l, err := c.VTPMList(id); err != nil || len(l) != 0 {
		t.Fatalf("empty VTPMList = %v, %v", l, err)
	}
}

// A manager whose VTPM_LIST never gets to its total, or pages out of
// order, is an error, not a loop.
func TestVTPMListBadPaging(t *testing.T) {
	be := binary.BigEndian
	one, two := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	for name, c := range map[string]struct {
		page []byte // every answer
		want string
	}{
		"stuck":    {be.AppendUint32(nil, 5), "empty page"},
		"repeats":  {append(be.AppendUint32(nil, 4), append(one, two...)...), "changed"},
		"too many": {append(be.AppendUint32(nil, 1), append(one, two...)...), "total of 1"},
	} {
		calls := 0
		cl := Client{T: sendFunc(func(cmd []byte) ([]byte, error) {
			if calls++; calls > 10 {
				t.Fatalf("%s: VTPMList loops", name)
			}
			return rsp(0, c.page), nil
		})}
		if l, err := cl.VTPMList(0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: VTPMList = %x, %v; want %q", name, l, err, c.want)
		}
	}
}

type sendFunc func([]byte) ([]byte, error)

func (f sendFunc) Send(b []byte) ([]byte, error) { return f(b) }

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		ord, code uint32
		call      func(Client) error
		want      string
	}{
		{proto.OrdGroupList, 1, func(c Client) error { _, err := c.GroupList(); return err }, "not the manager's administrator"},
		{proto.OrdGroupList, 2, func(c Client) error { _, err := c.GroupList(); return err }, "does not support groups"},
		{proto.OrdGroupUpdate, 1, func(c Client) error { return c.GroupUpdate(0, signedList(t, [16]byte{}, 1)) }, "not signed by the group's SAA key"},
		{proto.OrdGroupUpdate, 3, func(c Client) error { return c.GroupUpdate(0, signedList(t, [16]byte{}, 1)) }, "malformed"},
		{proto.OrdGroupNew, 0x28, func(c Client) error { _, _, err := c.GroupNew(pub(t)); return err }, "SAA key type"},
		{proto.OrdGroupNew, 17, func(c Client) error { _, _, err := c.GroupNew(pub(t)); return err }, "TPM_NOSPACE"},
		{proto.OrdGroupShow, 2, func(c Client) error { _, err := c.GroupShow(9); return err }, "TPM_BADINDEX"},
		{proto.OrdVTPMDel, 0x3C, func(c Client) error { return c.VTPMDel([16]byte{}) }, "is connected"},
		{proto.OrdGroupDel, 0x3C, func(c Client) error { return c.GroupDel(0) }, "group 0"},
		{proto.OrdVTPMNew, 0x1234, func(c Client) error { _, err := c.VTPMNew(0, nil); return err }, "return code 4660"},
	} {
		f := newFake(t)
		f.code = c.code
		err := c.call(Client{T: f})
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code || e.Ordinal != c.ord || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), OrdinalName(c.ord)) {
			t.Errorf("%s code %#x: %v, want %q", OrdinalName(c.ord), c.code, err, c.want)
		}
	}
	// Transport and framing failures are not *Error.
	c := Client{T: sendFunc(func([]byte) ([]byte, error) { return nil, errors.New("ring gone") })}
	if _, err := c.GroupList(); err == nil || IsCode(err, 0) || !strings.Contains(err.Error(), "GROUP_LIST: ring gone") {
		t.Fatalf("transport error: %v", err)
	}
	c = Client{T: sendFunc(func([]byte) ([]byte, error) {
		b, _ := proto.EncodeResponse(proto.TagVTPMRsp, 0, nil)
		return b, nil
	})}
	if err := c.GroupDel(0); err == nil || !strings.Contains(err.Error(), "tag") {
		t.Fatalf("wrong response tag: %v", err)
	}
	c = Client{T: sendFunc(func([]byte) ([]byte, error) { return rsp(0, []byte{1}), nil })}
	if err := c.VTPMDel([16]byte{}); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Fatalf("body on VTPM_DEL: %v", err)
	}
}

func TestDecodeGroupShowStrict(t *testing.T) {
	f := newFake(t)
	c := Client{T: f}
	u, _, _ := c.GroupNew(pub(t))
	if err := c.GroupUpdate(0, signedList(t, u, 5)); err != nil {
		t.Fatal(err)
	}
	good := f.serve(&proto.Request{Header: proto.Header{Code: proto.OrdGroupShow}, Params: []byte{0, 0, 0, 0}})[proto.HeaderSize:]
	if _, err := DecodeGroupShow(good); err != nil {
		t.Fatal(err)
	}
	set := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	// Offsets: UUID 0, keyLen 16, key 18 (65), seq 83, nextSeq 91,
	// family 99, n 100, bitmap 101, dlen 105, digest 106, nVTPMs 138,
	// flags 142.
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"key length": {set(16, 0, 64), "key length 64"},
		"key":        {set(18, 2), "key"},
		"next seq":   {set(91, 0, 0, 0, 0, 0, 0, 0, 5), "not above"},
		"family":     {set(99, 3), "family 3"},
		"family 0":   {set(99, 0), "no list installed"},
		"count":      {set(100, 9), "approval count 9"},
		"bitmap":     {set(101, 0x80, 0, 0, 0), "PCR bitmap"},
		"digest len": {set(105, 20), "digest of 20 bytes"},
		"truncated":  {good[:len(good)-1], "truncated in flags"},
		"trailing":   {append(bytes.Clone(good), 0), "unexpected bytes"},
	} {
		if _, err := DecodeGroupShow(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestDecodersStrict(t *testing.T) {
	be := binary.BigEndian
	if _, err := DecodeGroupList(be.AppendUint32(nil, 2)); err == nil {
		t.Error("GROUP_LIST count beyond the body accepted")
	}
	if _, err := DecodeGroupList(append(be.AppendUint32(nil, 2), 0, 0, 0, 5, 0, 0, 0, 5)); err == nil {
		t.Error("GROUP_LIST repeated ID accepted")
	}
	if ids, err := DecodeGroupList(append(be.AppendUint32(nil, 2), 0, 0, 0, 0, 0, 0, 0, 5)); err != nil || !slices.Equal(ids, []uint32{0, 5}) {
		t.Errorf("GROUP_LIST = %v, %v", ids, err)
	}
	if _, _, err := DecodeGroupNew(make([]byte, 19)); err == nil {
		t.Error("short GROUP_NEW accepted")
	}
	if _, err := DecodeVTPMNew(make([]byte, 17)); err == nil {
		t.Error("long VTPM_NEW accepted")
	}
	if _, _, err := DecodeVTPMList(append(be.AppendUint32(nil, 300), make([]byte, 255*16)...)); err == nil {
		t.Error("VTPM_LIST page of 255 accepted")
	}
	if _, _, err := DecodeVTPMList(append(be.AppendUint32(nil, 0), make([]byte, 16)...)); err == nil {
		t.Error("VTPM_LIST with more UUIDs than its total accepted")
	}
	if _, _, err := DecodeVTPMList(make([]byte, 5)); err == nil {
		t.Error("VTPM_LIST of 5 bytes accepted")
	}
}

func TestUUID(t *testing.T) {
	u := [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}
	s := FormatUUID(u)
	if s != "12345678-9abc-def0-0102-030405060708" {
		t.Fatalf("FormatUUID = %s", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), strings.ReplaceAll(s, "-", "")} {
		if got, err := ParseUUID(in); err != nil || got != u {
			t.Fatalf("ParseUUID(%s) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", s[:35], s + "0", strings.Replace(s, "-", "x", 1), "g" + s[1:], "1234567-89abc-def0-0102-030405060708"} {
		if _, err := ParseUUID(in); err == nil {
			t.Errorf("ParseUUID(%q) accepted", in)
		}
	}
}

func ExampleFormatUUID() {
	fmt.Println(FormatUUID([16]byte{0xde, 0xad, 0xbe, 0xef}))
	// Output: deadbeef-0000-0000-0000-000000000000
}
