package saa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
)

// Keys are made once: RSA-2048 generation is slow.
var (
	keysOnce            sync.Once
	rsaKey, rsaKey2     crypto.Signer
	ecdsaKey, ecdsaKey2 crypto.Signer
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		for _, k := range []struct {
			dst *crypto.Signer
			alg string
		}{{&rsaKey, "rsa"}, {&rsaKey2, "rsa"}, {&ecdsaKey, "ecdsa"}, {&ecdsaKey2, "ecdsa"}} {
			if *k.dst, err = GenerateKey(k.alg); err != nil {
				panic(err)
			}
		}
	})
}

func pubOf(t testing.TB, s crypto.Signer) PublicKey {
	t.Helper()
	k, err := NewPublicKey(s.Public())
	if err != nil {
		t.Fatalf("NewPublicKey: %v", err)
	}
	return k
}

func TestPublicKeyWireForm(t *testing.T) {
	testKeys(t)
	for _, c := range []struct {
		s    crypto.Signer
		alg  string
		size int
	}{{rsaKey, "rsa", 256}, {ecdsaKey, "ecdsa", 65}} {
		k := pubOf(t, c.s)
		b := k.Bytes()
		if len(b) != c.size || k.Alg() != c.alg {
			t.Fatalf("%s: %d-byte wire form, alg %q", c.alg, len(b), k.Alg())
		}
		switch p := c.s.Public().(type) {
		case *rsa.PublicKey:
			if !bytes.Equal(b, p.N.Bytes()) {
				t.Fatal("RSA wire form is not the big-endian modulus")
			}
		case *ecdsa.PublicKey:
			want := append([]byte{4}, p.X.FillBytes(make([]byte, 32))...)
			want = append(want, p.Y.FillBytes(make([]byte, 32))...)
			if !bytes.Equal(b, want) {
				t.Fatal("ECDSA wire form is not 04‖X‖Y")
			}
		}
		k2, err := ParsePublicKey(b)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("%s: ParsePublicKey(Bytes) = %v, %v", c.alg, k2, err)
		}
		if fp := k.Fingerprint(); len(fp) != 16 || fp == pubOf(t, rsaKey2).Fingerprint() {
			t.Fatalf("%s: fingerprint %q", c.alg, fp)
		}
		if !strings.HasPrefix(k.String(), c.alg+":") {
			t.Fatalf("String() = %q", k.String())
		}
	}
	var zero PublicKey
	if !zero.IsZero() || zero.Bytes() != nil || zero.Crypto() != nil || zero.String() != "no key" {
		t.Fatal("zero PublicKey is not empty")
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	testKeys(t)
	r := pubOf(t, rsaKey).Bytes()
	e := pubOf(t, ecdsaKey).Bytes()
	mod := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":         {nil, "0 bytes"},
		"255 bytes":     {r[1:], "255 bytes"},
		"top bit clear": {mod(r, func(b []byte) { b[0] &^= 0x80 }), "top bit"},
		"even modulus":  {mod(r, func(b []byte) { b[255] &^= 1 }), "even"},
		"compressed":    {mod(e, func(b []byte) { b[0] = 2 }), "uncompressed"},
		"off the curve": {mod(e, func(b []byte) { b[64] ^= 1 }), "ECDSA point"},
	} {
		if _, err := ParsePublicKey(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}

func TestNewPublicKeyRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	testKeys(t)
	e3 := *rsaKey.Public().(*rsa.PublicKey)
	e3.E = 3
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]crypto.PublicKey{
		"RSA-1024": &small.PublicKey, "e=3": &e3, "P-384": &p384.PublicKey, "string": "key",
	} {
		if _, err := NewPublicKey(k); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := MarshalPrivatePEM(small); err == nil {
		t.Error("MarshalPrivatePEM accepted an RSA-1024 key")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	if _, err := ParsePrivatePEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("ParsePrivatePEM accepted an RSA-1024 key")
	}
	if _, err := GenerateKey("dsa"); err == nil {
		t.Error("GenerateKey(dsa) succeeded")
	}
}

func TestPEM(t *testing.T) {
	testKeys(t)
	for _, s := range []crypto.Signer{rsaKey, ecdsaKey} {
		k := pubOf(t, s)
		priv, err := MarshalPrivatePEM(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(priv, []byte("BEGIN PRIVATE KEY")) {
			t.Fatalf("not PKCS#8: %s", priv[:40])
		}
		s2, err := ParsePrivatePEM(priv)
		if err != nil || !pubOf(t, s2).Equal(k) {
			t.Fatalf("ParsePrivatePEM: %v", err)
		}
		pub, err := MarshalPublicPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParsePublicPEM(pub)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("ParsePublicPEM: %v", err)
		}
		// The raw wire form, as manage-vtpmmgr.pl kept the modulus.
		k3, err := ParsePublicPEM(k.Bytes())
		if err != nil || !k3.Equal(k) {
			t.Fatalf("ParsePublicPEM(raw): %v", err)
		}
	}
	// openssl's traditional forms.
	r := rsaKey.(*rsa.PrivateKey)
	if s, err := ParsePrivatePEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(r)})); err != nil || !pubOf(t, s).Equal(pubOf(t, r)) {
		t.Fatalf("PKCS#1 private key: %v", err)
	}
	if k, err := ParsePublicPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&r.PublicKey)})); err != nil || !k.Equal(pubOf(t, r)) {
		t.Fatalf("PKCS#1 public key: %v", err)
	}
	for name, b := range map[string][]byte{
		"garbage":     []byte("not a key"),
		"certificate": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
		"bad DER":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}),
	} {
		if _, err := ParsePublicPEM(b); err == nil {
			t.Errorf("ParsePublicPEM(%s) accepted", name)
		}
		if _, err := ParsePrivatePEM(b); err == nil {
			t.Errorf("ParsePrivatePEM(%s) accepted", name)
		}
	}
}

func TestVerify(t *testing.T) {
	testKeys(t)
	d := sha256.Sum256([]byte("approved"))
	for _, c := range []struct{ s, other crypto.Signer }{{rsaKey, rsaKey2}, {ecdsaKey, ecdsaKey2}} {
		sig, err := c.s.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(pubOf(t, c.s), d[:], sig); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if err := Verify(pubOf(t, c.other), d[:], sig); err == nil {
			t.Fatal("another key's signature verified")
		}
		d2 := d
		d2[0] ^= 1
		if err := Verify(pubOf(t, c.s), d2[:], sig); err == nil {
			t.Fatal("signature over another digest verified")
		}
		if err := Verify(pubOf(t, c.s), d[:31], sig); err == nil {
			t.Fatal("short digest accepted")
		}
		if err := Verify(pubOf(t, c.s), d[:], append(sig, 0)); err == nil {
			t.Fatal("signature with a trailing byte verified")
		}
	}
	if err := Verify(PublicKey{}, d[:], make([]byte, 256)); err == nil {
		t.Fatal("Verify with no key succeeded")
	}
}
