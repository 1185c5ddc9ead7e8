package mgmt

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// groupShowSeed is a GROUP_SHOW answer from the fake manager, with a
// list installed.
func groupShowSeed(t testing.TB) []byte {
	f := newFake(t)
	c := Client{T: f}
	u, _, err := c.GroupNew(pub(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GroupUpdate(0, signedList(t, u, 5)); err != nil {
		t.Fatal(err)
	}
	return f.serve(&proto.Request{Header: proto.Header{Code: proto.OrdGroupShow}, Params: []byte{0, 0, 0, 0}})[proto.HeaderSize:]
}

// encodeGroupShow is the test's own encoder, to check a decoded answer
// says exactly what its bytes say.
func encodeGroupShow(g *GroupInfo) []byte {
	be := binary.BigEndian
	b := append([]byte(nil), g.UUID[:]...)
	k := g.Key.Bytes()
	b = be.AppendUint16(b, uint16(len(k)))
	b = append(b, k...)
	b = be.AppendUint64(b, g.Seq)
	b = be.AppendUint64(b, g.NextSeq)
	b = append(b, byte(g.Family), byte(len(g.Approvals)))
	for _, a := range g.Approvals {
		m, _ := saa.PCRMask(a.PCRs)
		b = be.AppendUint32(b, m)
		b = append(b, byte(len(a.Digest)))
		b = append(b, a.Digest...)
	}
	b = be.AppendUint32(b, g.VTPMs)
	return append(b, g.Flags)
}

func FuzzDecodeGroupShow(f *testing.F) {
	f.Add(groupShowSeed(f))
	empty := append(make([]byte, 16), 0, 0)
	empty = binary.BigEndian.AppendUint64(empty, 0)
	empty = binary.BigEndian.AppendUint64(empty, 1)
	f.Add(append(empty, 0, 0, 0, 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeGroupShow(b)
		if err != nil {
			return
		}
		if re := encodeGroupShow(g); !bytes.Equal(re, b) {
			t.Fatalf("decoded %+v re-encodes as % x, not % x", g, re, b)
		}
	})
}

func FuzzDecodeGroupList(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := DecodeGroupList(b)
		if err != nil {
			return
		}
		if len(b) != 4+4*len(ids) {
			t.Fatalf("%d IDs from %d bytes", len(ids), len(b))
		}
	})
}

func FuzzDecodeGroupNew(f *testing.F) {
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, id, err := DecodeGroupNew(b)
		if err != nil {
			return
		}
		if !bytes.Equal(binary.BigEndian.AppendUint32(u[:], id), b) {
			t.Fatal("GROUP_NEW decoded wrongly")
		}
	})
}

func FuzzDecodeVTPMList(f *testing.F) {
	f.Add(append([]byte{0, 0, 0, 2}, append(bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)...)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		total, page, err := DecodeVTPMList(b)
		if err != nil {
			return
		}
		if len(page) > MaxListPage || uint64(len(page)) > uint64(total) || len(b) != 4+16*len(page) {
			t.Fatalf("total %d, %d UUIDs from %d bytes", total, len(page), len(b))
		}
	})
}

func FuzzDecodeVTPMNew(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeVTPMNew(b)
		if err == nil && !bytes.Equal(u[:], b) {
			t.Fatal("VTPM_NEW decoded wrongly")
		}
	})
}

// FuzzClientResponses: whatever a manager answers, the client returns
// an error or a well-formed result, never panics.
func FuzzClientResponses(f *testing.F) {
	f.Add(uint8(0), rsp(0, []byte{0, 0, 0, 0}))
	f.Add(uint8(4), rsp(0, groupShowSeed(f)))
	list, key := signedList(f, [16]byte{}, 1), pub(f)
	f.Fuzz(func(t *testing.T, which uint8, answer []byte) {
		c := Client{T: sendFunc(func([]byte) ([]byte, error) { return answer, nil })}
		switch which % 8 {
		case 0:
			c.GroupList()
		case 1:
			c.GroupNew(key)
		case 2:
			c.GroupDel(1)
		case 3:
			c.VTPMDel([16]byte{})
		case 4:
			c.GroupShow(0)
		case 5:
			c.VTPMList(0)
		case 6:
			c.VTPMNew(0, nil)
		case 7:
			c.GroupUpdate(0, list)
		}
	})
}

func FuzzParseUUID(f *testing.F) {
	f.Add("12345678-9abc-def0-0102-030405060708")
	f.Add("123456789abcdef00102030405060708")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUUID(s)
		if err != nil {
			return
		}
		if u2, err := ParseUUID(FormatUUID(u)); err != nil || u2 != u {
			t.Fatalf("%q → %x does not round-trip", s, u)
		}
	})
}
