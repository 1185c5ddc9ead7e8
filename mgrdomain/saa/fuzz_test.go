package saa

import (
	"bytes"
	"crypto"
	"testing"
)

// FuzzParseList: ParseList never panics; what it accepts keeps its bytes,
// is within MaxListSize and has fields in range, and Verify on it never
// panics.
func FuzzParseList(f *testing.F) {
	for _, k := range keyCases(f) {
		for _, fam := range []Family{Family12, Family20} {
			b, err := SignList(testList(f, fam, 2), k.signer)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(Magic))
	pub := pubOf(f, ecdsaKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseList(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Raw, b) || len(b) > MaxListSize {
			t.Fatal("accepted list does not keep its bytes or is oversize")
		}
		l := s.List
		if err := l.check(); err != nil {
			t.Fatalf("accepted list fails SignList's checks: %v", err)
		}
		for _, a := range l.Approvals {
			if (l.Family == Family20) != (len(a.TPMSig) > 0) {
				t.Fatal("TPM signature presence does not match the family")
			}
		}
		_ = s.Verify(pub)
	})
}

// FuzzKeyInputs feeds arbitrary bytes to the key readers, chosen by
// which: the wire form (an accepted key's wire form is the input, and its
// TPM forms can be built), the PEM files (what they accept is an SAA
// key), and ECDSA signatures in TPM form (32-byte r and s, or a clean
// error). One target, so the fuzz tier fuzzes rather than builds.
func FuzzKeyInputs(f *testing.F) {
	testKeys(f)
	f.Add(uint8(0), pubOf(f, rsaKey).Bytes())
	f.Add(uint8(0), pubOf(f, ecdsaKey).Bytes())
	f.Add(uint8(0), make([]byte, 65))
	for _, s := range []crypto.Signer{rsaKey, ecdsaKey} {
		priv, _ := MarshalPrivatePEM(s)
		pub, _ := MarshalPublicPEM(pubOf(f, s))
		f.Add(uint8(1), priv)
		f.Add(uint8(1), pub)
	}
	f.Add(uint8(2), []byte{0x30, 6, 2, 1, 1, 2, 1, 1})
	ecPub := pubOf(f, ecdsaKey)
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		switch which % 3 {
		case 0:
			k, err := ParsePublicKey(b)
			if err != nil {
				return
			}
			if !bytes.Equal(k.Bytes(), b) {
				t.Fatalf("Bytes() = %x, want %x", k.Bytes(), b)
			}
			if _, err := k.TPMPublic(); err != nil {
				t.Fatal(err)
			}
			if _, err := NewPublicKey(k.Crypto()); err != nil {
				t.Fatalf("accepted key refused by NewPublicKey: %v", err)
			}
		case 1:
			if k, err := ParsePublicPEM(b); err == nil && k.IsZero() {
				t.Fatal("ParsePublicPEM accepted no key")
			}
			if s, err := ParsePrivatePEM(b); err == nil {
				if _, err := NewPublicKey(s.Public()); err != nil {
					t.Fatal(err)
				}
			}
		case 2:
			s, err := TPMSignature(ecPub, b)
			if err != nil {
				return
			}
			e, err := s.Signature.ECDSA()
			if err != nil || len(e.SignatureR.Buffer) != 32 || len(e.SignatureS.Buffer) != 32 {
				t.Fatalf("ECDSA signature %v, %v", e, err)
			}
		}
	})
}
