package hwtpm

import (
	"crypto/rsa"
	"crypto/x509"
	"os/exec"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
)

// EKCert12 reads the certificate swtpm_setup (--create-ek-cert) left in
// TPM_NV_INDEX_EKCert, for the TPM's EK; a TPM without one answers nil.
func TestEKCert12(t *testing.T) {
	if _, err := exec.LookPath("swtpm_localca"); err != nil {
		t.Skip("SKIP: swtpm_localca not installed")
	}
	tp := open12(t, swtpmtest.StartSwtpm12(t, ownerPass, srkPass, "--create-ek-cert"), 0)
	der, err := tp.EKCert12()
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tp.EKPublic12()
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ParsePubKey12(raw)
	if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || !k.Equal(ek) {
		t.Errorf("the certificate is for %T, not the EK", c.PublicKey)
	}
	none := open12(t, swtpmtest.StartSwtpm12(t, ownerPass, srkPass), 0)
	if der, err := none.EKCert12(); der != nil || err != nil {
		t.Errorf("a TPM without an EK certificate: %d bytes, %v", len(der), err)
	}
}
