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

// FuzzParsePublicKey: an accepted key's wire form is the input, and its
// TPM forms can be built.
func FuzzParsePublicKey(f *testing.F) {
	testKeys(f)
	f.Add(pubOf(f, rsaKey).Bytes())
	f.Add(pubOf(f, ecdsaKey).Bytes())
	f.Add(make([]byte, 65))
	f.Fuzz(func(t *testing.T, b []byte) {
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
	})
}

// FuzzTPMSignature: converting any bytes as an ECDSA signature fails
// cleanly or gives 32-byte r and s.
func FuzzTPMSignature(f *testing.F) {
	testKeys(f)
	pub := pubOf(f, ecdsaKey)
	f.Add([]byte{0x30, 6, 2, 1, 1, 2, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := TPMSignature(pub, b)
		if err != nil {
			return
		}
		e, err := s.Signature.ECDSA()
		if err != nil || len(e.SignatureR.Buffer) != 32 || len(e.SignatureS.Buffer) != 32 {
			t.Fatalf("ECDSA signature %v, %v", e, err)
		}
	})
}

// FuzzParsePEM: the key file readers never panic, and what they accept
// is an SAA key.
func FuzzParsePEM(f *testing.F) {
	testKeys(f)
	for _, s := range []crypto.Signer{rsaKey, ecdsaKey} {
		priv, _ := MarshalPrivatePEM(s)
		pub, _ := MarshalPublicPEM(pubOf(f, s))
		f.Add(priv)
		f.Add(pub)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParsePublicPEM(b); err == nil && k.IsZero() {
			t.Fatal("ParsePublicPEM accepted no key")
		}
		if s, err := ParsePrivatePEM(b); err == nil {
			if _, err := NewPublicKey(s.Public()); err != nil {
				t.Fatal(err)
			}
		}
	})
}
