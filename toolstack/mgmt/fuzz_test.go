package mgmt

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
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

// FuzzDecoders feeds arbitrary bytes to each response decoder (and the
// UUID parser), chosen by which: no panic, and what is accepted says
// exactly what its bytes say. One target for all, so the fuzz tier spends
// its time fuzzing rather than building.
func FuzzDecoders(f *testing.F) {
	f.Add(uint8(0), groupShowSeed(f))
	empty := append(make([]byte, 16), 0, 0)
	empty = binary.BigEndian.AppendUint64(empty, 0)
	empty = binary.BigEndian.AppendUint64(empty, 1)
	f.Add(uint8(0), append(empty, 0, 0, 0, 0, 0, 0, 1))
	f.Add(uint8(1), []byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3})
	f.Add(uint8(2), make([]byte, 20))
	f.Add(uint8(3), append([]byte{0, 0, 0, 2}, append(bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)...)...))
	f.Add(uint8(4), make([]byte, 16))
	f.Add(uint8(5), []byte("12345678-9abc-def0-0102-030405060708"))
	f.Add(uint8(5), []byte("123456789abcdef00102030405060708"))
	f.Add(uint8(6), groupAKSeed(f))
	f.Add(uint8(6), groupAK12Seed(f))
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		switch which % 7 {
		case 0:
			g, err := DecodeGroupShow(b)
			if err != nil {
				return
			}
			if re := encodeGroupShow(g); !bytes.Equal(re, b) {
				t.Fatalf("decoded %+v re-encodes as % x, not % x", g, re, b)
			}
		case 1:
			ids, err := DecodeGroupList(b)
			if err == nil && len(b) != 4+4*len(ids) {
				t.Fatalf("%d IDs from %d bytes", len(ids), len(b))
			}
		case 2:
			u, id, err := DecodeGroupNew(b)
			if err == nil && !bytes.Equal(binary.BigEndian.AppendUint32(u[:], id), b) {
				t.Fatal("GROUP_NEW decoded wrongly")
			}
		case 3:
			total, page, err := DecodeVTPMList(b)
			if err == nil && (len(page) > MaxListPage || uint64(len(page)) > uint64(total) || len(b) != 4+16*len(page)) {
				t.Fatalf("total %d, %d UUIDs from %d bytes", total, len(page), len(b))
			}
		case 4:
			u, err := DecodeVTPMNew(b)
			if err == nil && !bytes.Equal(u[:], b) {
				t.Fatal("VTPM_NEW decoded wrongly")
			}
		case 5:
			u, err := ParseUUID(string(b))
			if err != nil {
				return
			}
			if u2, err := ParseUUID(FormatUUID(u)); err != nil || u2 != u {
				t.Fatalf("%q → %x does not round-trip", b, u)
			}
		case 6:
			if g, err := DecodeGroupAK(b); err == nil && (g.AK == nil || g.EK == nil ||
				(g.Family == deepquote.HW20) != (len(g.AKName) > 0) || (g.Family == deepquote.HW12) != (g.IdentityBinding != nil)) {
				t.Fatal("GROUP_AK decoded without its keys")
			}
		}
	})
}

// groupAKSeed is a TPM 2.0 GROUP_AK answer: two default-template public
// areas (their keys' value does not matter to the decoder) and no
// certificate.
func groupAKSeed(t testing.TB) []byte {
	b := []byte{deepquote.HW20}
	for _, tmpl := range []tpm2.TPMTPublic{tpm2.ECCEKTemplate, tpm2.RSAEKTemplate} {
		if tmpl.Type == tpm2.TPMAlgECC {
			tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
				X: tpm2.TPM2BECCParameter{Buffer: bytes.Repeat([]byte{1}, 32)}, Y: tpm2.TPM2BECCParameter{Buffer: bytes.Repeat([]byte{2}, 32)}})
		}
		p := tpm2.Marshal(tmpl)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return append(b, 0, 0)
}

// pubKey12 is an RSA-2048 key's TPM_PUBKEY (TPM 1.2 Part 2, 10.5).
func pubKey12(k *rsa.PublicKey) []byte {
	b := []byte{0, 0, 0, 1, 0, 1, 0, 2, 0, 0, 0, 12, 0, 0, 8, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0}
	return append(b, k.N.FillBytes(make([]byte, 256))...)
}

// groupAK12Seed is a TPM 1.2 GROUP_AK answer whose identity binding
// verifies, so the decoder is fuzzed past its signature check.
func groupAK12Seed(t testing.TB) []byte {
	ak, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := rsa.GenerateKey(rand.Reader, 2048)
	group := [16]byte{1, 2, 3}
	label := hwtpm.GroupLabel12(group)
	contents := append(append([]byte{1, 1, 0, 0, 0, 0, 0, 0x79}, label[:]...), pubKey12(&ak.PublicKey)...)
	h := sha1.Sum(contents)
	binding, err := rsa.SignPKCS1v15(rand.Reader, ak, crypto.SHA1, h[:])
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{deepquote.HW12}
	for _, f := range [][]byte{pubKey12(&ak.PublicKey), pubKey12(&ek.PublicKey), nil, binding} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	b = append(b, group[:]...)
	g, err := DecodeGroupAK(b)
	if err != nil || g.Group != group || g.AK.(*rsa.PublicKey).N.Cmp(ak.N) != 0 {
		t.Fatalf("TPM 1.2 GROUP_AK seed: %v", err)
	}
	return b
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
