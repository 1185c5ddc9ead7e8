package saa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

var group = [16]byte{0x5a, 0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

// testList is a list of family f with n approvals.
func testList(t testing.TB, f Family, n int) ConfigList {
	t.Helper()
	l := ConfigList{Family: f, Group: group, Seq: 7}
	for i := range n {
		pcrs := []uint{0, 2, uint(4 + i)}
		var d []byte
		if f == Family12 {
			var vals [][]byte
			for _, p := range pcrs {
				v := sha1.Sum([]byte{byte(p), byte(i)})
				vals = append(vals, v[:])
			}
			c, err := Composite12(pcrs, vals)
			if err != nil {
				t.Fatal(err)
			}
			d = c[:]
		} else {
			var vals [][]byte
			for _, p := range pcrs {
				v := sha256.Sum256([]byte{byte(p), byte(i)})
				vals = append(vals, v[:])
			}
			d = PCRDigest(vals)
		}
		l.Approvals = append(l.Approvals, Approval{PCRs: pcrs, Digest: d})
	}
	return l
}

type keyCase struct {
	name          string
	signer, other crypto.Signer
}

func keyCases(t testing.TB) []keyCase {
	testKeys(t)
	return []keyCase{{"rsa", rsaKey, rsaKey2}, {"ecdsa", ecdsaKey, ecdsaKey2}}
}

func TestListRoundTrip(t *testing.T) {
	for _, k := range keyCases(t) {
		for _, f := range []Family{Family12, Family20} {
			l := testList(t, f, 3)
			b, err := SignList(l, k.signer)
			if err != nil {
				t.Fatalf("%s %s: SignList: %v", k.name, f, err)
			}
			s, err := ParseList(b)
			if err != nil {
				t.Fatalf("%s %s: ParseList: %v", k.name, f, err)
			}
			if err := s.Verify(pubOf(t, k.signer)); err != nil {
				t.Fatalf("%s %s: Verify: %v", k.name, f, err)
			}
			if err := s.Verify(pubOf(t, k.other)); err == nil || !strings.Contains(err.Error(), "list signature") {
				t.Fatalf("%s %s: Verify with another key = %v", k.name, f, err)
			}
			got := s.List
			if got.Family != f || got.Group != group || got.Seq != 7 || len(got.Approvals) != 3 || !bytes.Equal(s.Raw, b) {
				t.Fatalf("%s %s: decoded %+v", k.name, f, got)
			}
			for i, a := range got.Approvals {
				w := l.Approvals[i]
				if !equalPCRs(a.PCRs, w.PCRs) || !bytes.Equal(a.Digest, w.Digest) {
					t.Fatalf("approval %d: %v %x, want %v %x", i, a.PCRs, a.Digest, w.PCRs, w.Digest)
				}
				if (f == Family20) != (len(a.TPMSig) > 0) {
					t.Fatalf("%s: approval %d has a %d-byte TPM signature", f, i, len(a.TPMSig))
				}
			}
			if !bytes.Equal(b[:8], []byte("XVTPMCFG")) || binary.BigEndian.Uint16(b[8:]) != 1 || b[10] != byte(f) {
				t.Fatalf("header % x", b[:11])
			}
		}
	}
}

func equalPCRs(a, b []uint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestListFlips: any single changed byte of a signed list is refused,
// by ParseList or by Verify.
func TestListFlips(t *testing.T) {
	for _, k := range keyCases(t) {
		pub := pubOf(t, k.signer)
		for _, f := range []Family{Family12, Family20} {
			b, err := SignList(testList(t, f, 2), k.signer)
			if err != nil {
				t.Fatal(err)
			}
			for i := range b {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					c := bytes.Clone(b)
					c[i] ^= x
					s, err := ParseList(c)
					if err == nil {
						err = s.Verify(pub)
					}
					if err == nil {
						t.Fatalf("%s %s: byte %d ^ %#x accepted", k.name, f, i, x)
					}
				}
			}
			// Truncated or extended.
			for n := range len(b) {
				if _, err := ParseList(b[:n]); err == nil {
					t.Fatalf("%s %s: %d-byte prefix parsed", k.name, f, n)
				}
			}
			if _, err := ParseList(append(bytes.Clone(b), 0)); err == nil || !strings.Contains(err.Error(), "follow the signature") {
				t.Fatalf("trailing byte: %v", err)
			}
		}
	}
}

// TestTPMSigCrossCheck: each TPM 2.0 approval's signature verifies with
// the standard library over AuthorizeHash(ApprovedPolicy(...)), computed
// here from policy.go without ApprovalMessage.
func TestTPMSigCrossCheck(t *testing.T) {
	for _, k := range keyCases(t) {
		l := testList(t, Family20, 2)
		b, err := SignList(l, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseList(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range s.List.Approvals {
			pol, err := ApprovedPolicy(l.Approvals[i].PCRs, l.Approvals[i].Digest, l.Seq, DefaultApprovalIndex)
			if err != nil {
				t.Fatal(err)
			}
			h := AuthorizeHash(pol)
			var ok bool
			switch p := k.signer.Public().(type) {
			case *rsa.PublicKey:
				ok = rsa.VerifyPKCS1v15(p, crypto.SHA256, h, a.TPMSig) == nil
			case *ecdsa.PublicKey:
				ok = ecdsa.VerifyASN1(p, h, a.TPMSig)
			}
			if !ok {
				t.Fatalf("%s: approval %d's TPM signature does not verify over AuthorizeHash", k.name, i)
			}
			// The same approval under another sequence number is another
			// policy: an old signature cannot be replayed in a new list.
			pol2, _ := ApprovedPolicy(l.Approvals[i].PCRs, l.Approvals[i].Digest, l.Seq+1, DefaultApprovalIndex)
			if Verify(pubOf(t, k.signer), AuthorizeHash(pol2), a.TPMSig) == nil {
				t.Fatalf("%s: approval %d's signature verifies for seq+1", k.name, i)
			}
		}
	}
}

// TestTPMSigHardware: swtpm's TPM2_VerifySignature accepts the TPM
// signatures, given the key as TPMPublic and the signature as
// TPMSignature — what the manager hands its hardware TPM.
func TestTPMSigHardware(t *testing.T) {
	sw := swtpmtest.StartSwtpm(t, "")
	tpm := sw.TPM()
	for _, k := range keyCases(t) {
		pub := pubOf(t, k.signer)
		tp, err := pub.TPMPublic()
		if err != nil {
			t.Fatal(err)
		}
		le, err := tpm2.LoadExternal{InPublic: tpm2.New2B(tp), Hierarchy: tpm2.TPMRHOwner}.Execute(tpm)
		if err != nil {
			t.Fatalf("%s: LoadExternal: %v", k.name, err)
		}
		l := testList(t, Family20, 2)
		b, err := SignList(l, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := ParseList(b)
		for i, a := range s.List.Approvals {
			msg, err := ApprovalMessage(a, s.List.Seq)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := TPMSignature(pub, a.TPMSig)
			if err != nil {
				t.Fatal(err)
			}
			vs := tpm2.VerifySignature{KeyHandle: tpm2.NamedHandle{Handle: le.ObjectHandle, Name: le.Name}, Digest: tpm2.TPM2BDigest{Buffer: msg}, Signature: sig}
			if _, err := vs.Execute(tpm); err != nil {
				t.Fatalf("%s: approval %d: TPM2_VerifySignature: %v", k.name, i, err)
			}
			msg[0] ^= 1
			vs.Digest.Buffer = msg
			if _, err := vs.Execute(tpm); err == nil {
				t.Fatalf("%s: the TPM verified the signature over another digest", k.name)
			}
		}
		tpm2.FlushContext{FlushHandle: le.ObjectHandle}.Execute(tpm)
	}
}

func TestSignListRefuses(t *testing.T) {
	testKeys(t)
	for name, c := range map[string]struct {
		edit func(*ConfigList)
		want string
	}{
		"family 3":      {func(l *ConfigList) { l.Family = 3 }, "family 3"},
		"seq 0":         {func(l *ConfigList) { l.Seq = 0 }, "sequence number 0"},
		"no approvals":  {func(l *ConfigList) { l.Approvals = nil }, "0 approvals"},
		"9 approvals":   {func(l *ConfigList) { l.Approvals = testList(t, Family20, 9).Approvals }, "9 approvals"},
		"no PCRs":       {func(l *ConfigList) { l.Approvals[0].PCRs = nil }, "no PCR"},
		"PCR 24":        {func(l *ConfigList) { l.Approvals[1].PCRs = []uint{1, 24} }, "PCR 24"},
		"PCRs unsorted": {func(l *ConfigList) { l.Approvals[0].PCRs = []uint{4, 2} }, "ascending"},
		"SHA-1 digest":  {func(l *ConfigList) { l.Approvals[0].Digest = make([]byte, 20) }, "digest of 20 bytes"},
	} {
		l := testList(t, Family20, 2)
		c.edit(&l)
		if _, err := SignList(l, ecdsaKey); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	if _, err := SignList(testList(t, Family20, 1), nil); err == nil {
		t.Error("SignList without a key succeeded")
	}
}

func TestParseListFieldErrors(t *testing.T) {
	testKeys(t)
	b, err := SignList(testList(t, Family20, 1), ecdsaKey)
	if err != nil {
		t.Fatal(err)
	}
	set := func(off int, v ...byte) []byte {
		c := bytes.Clone(b)
		copy(c[off:], v)
		return c
	}
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"magic":      {set(0, 'Y'), "magic"},
		"version":    {set(9, 2), "version 2"},
		"family":     {set(10, 0), "family 0"},
		"seq":        {set(27, 0, 0, 0, 0, 0, 0, 0, 0), "sequence number 0"},
		"count 0":    {set(35, 0), "approval count 0"},
		"count 9":    {set(35, 9), "approval count 9"},
		"PCR 24":     {set(36, 1, 0, 0, 1), "PCR bitmap 0x01000001"},
		"no PCR":     {set(36, 0, 0, 0, 0), "PCR bitmap"},
		"tpmSig len": {set(72, 0, 7), "TPM signature length 7"},
		"truncated":  {b[:50], "truncated in approval 0 digest"},
		"oversize":   {make([]byte, MaxListSize+1), "exceeds"},
	} {
		if _, err := ParseList(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	var s *Signed
	if err := s.Verify(pubOf(t, ecdsaKey)); err == nil {
		t.Error("nil Signed verified")
	}
}

// TestMaxListSize: the longest list (RSA, TPM 2.0, MaxApprovals) is
// MaxListSize bytes and fits a GROUP_UPDATE request: the header and the
// group field are 14 bytes.
func TestMaxListSize(t *testing.T) {
	testKeys(t)
	l := testList(t, Family20, MaxApprovals)
	b, err := SignList(l, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxListSize {
		t.Fatalf("longest list is %d bytes, MaxListSize %d", len(b), MaxListSize)
	}
	if MaxListSize > proto.MaxMessage-proto.HeaderSize-4 {
		t.Fatalf("MaxListSize %d does not fit a %d-byte message after 14 bytes", MaxListSize, proto.MaxMessage)
	}
	if _, err := ParseList(b); err != nil {
		t.Fatal(err)
	}
}
