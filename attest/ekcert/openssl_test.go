package ekcert

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// writePEM writes der as a PEM certificate file in dir.
func writePEM(t *testing.T, dir, name string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// OpenSSL, a verifier of its own, accepts the chain (strictly, as RFC
// 5280 profiles it), refuses it against another CA, and reads the TCG
// attributes out of the subjectAltName.
func TestOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIP: openssl not installed")
	}
	tpm := startEngine(t)
	dir := t.TempDir()
	for _, alg := range []string{"ecdsa", "rsa"} {
		ca, caCert := newCA(t, alg)
		_, otherCA := newCA(t, alg)
		caPEM := writePEM(t, dir, alg+"-ca.pem", caCert.Raw)
		otherPEM := writePEM(t, dir, alg+"-other.pem", otherCA.Raw)
		for _, c := range []struct {
			name  string
			tmpl  gt.TPMTPublic
			usage string
		}{
			{"rsa", gtRSAEK, "Key Encipherment"},
			{"ecc", gtECCEK, "Key Agreement"},
		} {
			t.Run(alg+"/"+c.name, func(t *testing.T) {
				ek := createEK(t, tpm, c.tmpl)
				nb, na := window()
				der, err := Issue(ca, caCert, ek, testInfo, nb, na)
				if err != nil {
					t.Fatal(err)
				}
				ekPEM := writePEM(t, dir, alg+"-"+c.name+"-ek.pem", der)
				out, err := exec.Command("openssl", "verify", "-x509_strict", "-CAfile", caPEM, ekPEM).CombinedOutput()
				if err != nil || !strings.Contains(string(out), ": OK") {
					t.Fatalf("openssl verify: %v\n%s", err, out)
				}
				if out, err := exec.Command("openssl", "verify", "-CAfile", otherPEM, ekPEM).CombinedOutput(); err == nil {
					t.Errorf("openssl verify accepted another CA:\n%s", out)
				}
				out, err = exec.Command("openssl", "x509", "-noout", "-text", "-in", ekPEM).CombinedOutput()
				if err != nil {
					t.Fatalf("openssl x509: %v\n%s", err, out)
				}
				text := string(out)
				for _, want := range []string{
					"Version: 3 (0x2)",
					"X509v3 Subject Alternative Name: critical",
					"DirName:/2.23.133.2.1=id:58565450/2.23.133.2.2=xenvtpm vTPM/2.23.133.2.3=id:00010000",
					"X509v3 Key Usage: critical\n                " + c.usage + "\n",
					"X509v3 Basic Constraints: critical\n                CA:FALSE",
					"X509v3 Extended Key Usage: \n                2.23.133.8.1\n",
					"X509v3 Authority Key Identifier",
					"X509v3 Subject Directory Attributes",
				} {
					if !strings.Contains(text, want) {
						t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
					}
				}
				// The subject is empty.
				if !strings.Contains(text, "Subject: \n") && !strings.Contains(text, "Subject:\n") {
					t.Errorf("subject not empty:\n%s", text)
				}
			})
		}
	}
}
