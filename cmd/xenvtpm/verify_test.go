package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
)

func TestVerifyEKCert(t *testing.T) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	key, ca, err := ekcert.NewCA("group CA", "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ekcert.NewCA("another CA", "ecdsa")
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	notEK, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := ekcert.Issue(key, ca, &ek.PublicKey, ekcert.TPMInfo{Manufacturer: 1, Model: "xenvtpm", Version: 2}, time.Now().Add(-time.Hour), ekcert.NoExpiry)
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "ek.der")
	os.WriteFile(cert, der, 0o644)
	caFile, otherFile := write("ca.pem", "CERTIFICATE", ca.Raw), write("other.pem", "CERTIFICATE", other.Raw)
	spki := func(k *ecdsa.PrivateKey) []byte { b, _ := x509.MarshalPKIXPublicKey(&k.PublicKey); return b }
	ekFile, notEKFile := write("ek.pem", "PUBLIC KEY", spki(ek)), write("not.pem", "PUBLIC KEY", spki(notEK))

	out, err := captureStdout(t, func() error { return runVerify([]string{"ekcert", cert, "--ca", caFile, "--ek", ekFile}) })
	if err != nil || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("%q, %v", out, err)
	}
	for name, args := range map[string][]string{
		"other CA": {"ekcert", cert, "--ca", otherFile},
		"other EK": {"ekcert", cert, "--ca", caFile, "--ek", notEKFile},
		"no CA":    {"ekcert", cert},
		"CA as EK": {"ekcert", cert, "--ca", caFile, "--ek", caFile},
	} {
		if _, err := captureStdout(t, func() error { return runVerify(args) }); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
