package tpm2

import (
	"bytes"
	"crypto/sha256"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// Comparing a secret with bytes.Equal tells, by how long it takes, how
// many leading bytes of a guess were right; the engine compares secrets
// with crypto/subtle or hmac.Equal. This reads the package's own source
// for a bytes.Equal whose operands are named like secrets.
func TestSecretsComparedInConstantTime(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Equal" {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "bytes" {
				return true
			}
			checked++
			for _, arg := range call.Args {
				ast.Inspect(arg, func(n ast.Node) bool {
					if id, ok := n.(*ast.Ident); ok && secretName.MatchString(id.Name) {
						t.Errorf("%v: bytes.Equal on %s: compare secrets in constant time", fset.Position(call.Pos()), id.Name)
					}
					return true
				})
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("found no bytes.Equal call at all: the check reads the wrong files")
	}
}

func TestSaltedBoundSessionsAndParamEncryption(t *testing.T) {
	_, tr := newStarted(t)
	srkRSA := createPrimary(t, tr, gt.TPMRHOwner, gt.RSASRKTemplate)
	rsaPub, _ := srkRSA.OutPublic.Contents()
	srkECC := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	eccPub, _ := srkECC.OutPublic.Contents()
	// Seal data under the RSA SRK with an auth value; unseal through
	// sessions of every flavour and check the data arrives intact.
	secret := []byte("sealed-bytes")
	cr, err := (gt.Create{
		ParentHandle: gt.NamedHandle{Handle: srkRSA.ObjectHandle, Name: srkRSA.Name},
		InSensitive:  gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{UserAuth: gt.TPM2BAuth{Buffer: []byte("pw")}, Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: secret})}},
		InPublic: gt.New2B(gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
			ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true},
			Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}})}),
	}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := (gt.Load{ParentHandle: gt.NamedHandle{Handle: srkRSA.ObjectHandle, Name: srkRSA.Name}, InPrivate: cr.OutPrivate, InPublic: cr.OutPublic}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	sessions := map[string]gt.Session{
		"password":           gt.PasswordAuth([]byte("pw")),
		"hmac":               gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw"))),
		"hmac-sha1":          gt.HMAC(gt.TPMAlgSHA1, 20, gt.Auth([]byte("pw"))),
		"hmac-sha384":        gt.HMAC(gt.TPMAlgSHA384, 48, gt.Auth([]byte("pw"))),
		"salted-rsa-enc":     gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw")), gt.Salted(srkRSA.ObjectHandle, *rsaPub), gt.AESEncryption(128, gt.EncryptOut)),
		"salted-ecc-enc":     gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw")), gt.Salted(srkECC.ObjectHandle, *eccPub), gt.AESEncryption(256, gt.EncryptOut)),
		"bound":              gt.HMAC(gt.TPMAlgSHA256, 16, gt.Bound(ld.ObjectHandle, ld.Name, []byte("pw"))),
		"bound-salted-enc":   gt.HMAC(gt.TPMAlgSHA256, 16, gt.Bound(ld.ObjectHandle, ld.Name, []byte("pw")), gt.Salted(srkECC.ObjectHandle, *eccPub), gt.AESEncryption(128, gt.EncryptOut)),
		"policy-authvalue":   gt.Policy(gt.TPMAlgSHA256, 16, nil, gt.Auth([]byte("pw"))),
		"trailing-zero-pass": gt.PasswordAuth([]byte("pw\x00\x00")),
	}
	for name, s := range sessions {
		if name == "policy-authvalue" {
			continue // the sealed object has no policy
		}
		t.Run(name, func(t *testing.T) {
			r, err := (gt.Unseal{ItemHandle: gt.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: s}}).Execute(tr)
			if err != nil {
				t.Fatalf("Unseal: %v", err)
			}
			if !bytes.Equal(r.OutData.Buffer, secret) {
				t.Fatalf("unsealed %q", r.OutData.Buffer)
			}
		})
	}
	// Encrypted command parameter (decrypt session): Hash over XOR too.
	for _, s := range []gt.Session{
		gt.HMAC(gt.TPMAlgSHA256, 16, gt.Salted(srkECC.ObjectHandle, *eccPub), gt.AESEncryption(128, gt.EncryptInOut)),
		gt.HMAC(gt.TPMAlgSHA256, 16, gt.Salted(srkRSA.ObjectHandle, *rsaPub), gt.AESEncryption(128, gt.EncryptIn)),
	} {
		r, err := (gt.Hash{Data: gt.TPM2BMaxBuffer{Buffer: []byte("abc")}, HashAlg: gt.TPMAlgSHA256, Hierarchy: gt.TPMRHNull}).Execute(tr, s)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte("abc"))
		if !bytes.Equal(r.OutHash.Buffer, want[:]) {
			t.Fatalf("Hash via encrypted session %x", r.OutHash.Buffer)
		}
	}
}

// TestKernelHMACFlow follows Linux's CONFIG_TCG_TPM2_HMAC sequence
// (tpm2-sessions.c): a NULL-hierarchy ECC P-256 primary, saved and
// flushed, reloaded per command to salt an ECDH session that then
// encrypts parameters both ways.
func TestKernelHMACFlow(t *testing.T) {
	_, tr := newStarted(t)
	tmpl := gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{NoDA: true, FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Decrypt: true, Restricted: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(128)), Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)},
			Scheme:    gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}})}
	null := createPrimary(t, tr, gt.TPMRHNull, tmpl)
	if null.CreationTicket.Tag != gt.TPMSTCreation {
		t.Fatalf("creation ticket tag 0x%x", uint16(null.CreationTicket.Tag))
	}
	pub, _ := null.OutPublic.Contents()
	ctx, err := (gt.ContextSave{SaveHandle: null.ObjectHandle}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.FlushContext{FlushHandle: null.ObjectHandle}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ld, err := (gt.ContextLoad{Context: ctx.Context}).Execute(tr)
		if err != nil {
			t.Fatalf("ContextLoad of the null key: %v", err)
		}
		s, closer, err := gt.HMACSession(tr, gt.TPMAlgSHA256, 16, gt.Salted(ld.LoadedHandle, *pub), gt.AESEncryption(128, gt.EncryptInOut))
		if err != nil {
			t.Fatalf("ECDH-salted session: %v", err)
		}
		if _, err := (gt.FlushContext{FlushHandle: ld.LoadedHandle}).Execute(tr); err != nil {
			t.Fatal(err)
		}
		data := []byte("kernel sealed blob")
		r, err := (gt.Hash{Data: gt.TPM2BMaxBuffer{Buffer: data}, HashAlg: gt.TPMAlgSHA256, Hierarchy: gt.TPMRHNull}).Execute(tr, s)
		if err != nil {
			t.Fatalf("encrypted command: %v", err)
		}
		if want := sha256.Sum256(data); !bytes.Equal(r.OutHash.Buffer, want[:]) {
			t.Fatalf("hash through encrypted session %x", r.OutHash.Buffer)
		}
		if err := closer(); err != nil {
			t.Fatal(err)
		}
	}
}
