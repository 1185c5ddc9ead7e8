package ekcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"strings"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
)

// engine is the project's TPM 2.0 engine in process, as a go-tpm
// transport.
type engine struct{ t *tpm2.TPM }

func (e engine) Send(b []byte) ([]byte, error) { return e.t.Process(b, 0), nil }

// startEngine returns a fresh engine after TPM2_Startup(CLEAR).
func startEngine(t testing.TB) transport.TPM {
	t.Helper()
	tp, err := tpm2.New(tpm2.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := engine{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// createEK makes the EK of template under the endorsement hierarchy and
// returns its public key.
func createEK(t testing.TB, tpm transport.TPM, template gt.TPMTPublic) crypto.PublicKey {
	t.Helper()
	rsp, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHEndorsement, InPublic: gt.New2B(template)}).Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	k, err := gt.Pub(*pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var testInfo = TPMInfo{Manufacturer: 0x58565450, Model: "xenvtpm vTPM", Version: 0x00010000}

// window is a validity that contains now.
func window() (time.Time, time.Time) {
	now := time.Now().Truncate(time.Second)
	return now.Add(-time.Hour), now.Add(24 * time.Hour)
}

func newCA(t testing.TB, alg string) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	k, c, err := NewCA("xenvtpm group test CA", alg)
	if err != nil {
		t.Fatal(err)
	}
	return k, c
}

// EKs the engine makes from the TCG default templates get certificates
// Check accepts for that key and refuses for another key or another CA.
func TestEngineEKs(t *testing.T) {
	tpm := startEngine(t)
	rsaEK := createEK(t, tpm, gt.RSAEKTemplate)
	eccEK := createEK(t, tpm, gt.ECCEKTemplate)
	if _, ok := rsaEK.(*rsa.PublicKey); !ok {
		t.Fatalf("RSA EK is %T", rsaEK)
	}
	if _, ok := eccEK.(*ecdsa.PublicKey); !ok {
		t.Fatalf("ECC EK is %T", eccEK)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, alg := range []string{"ecdsa", "rsa"} {
		ca, caCert := newCA(t, alg)
		_, otherCA := newCA(t, alg)
		for _, c := range []struct {
			name      string
			ek, wrong crypto.PublicKey
			usage     x509.KeyUsage
		}{
			{"rsa", rsaEK, eccEK, x509.KeyUsageKeyEncipherment},
			{"ecc", eccEK, rsaEK, x509.KeyUsageKeyAgreement},
			{"ecc-other", eccEK, &other.PublicKey, x509.KeyUsageKeyAgreement},
		} {
			t.Run(alg+"/"+c.name, func(t *testing.T) {
				nb, na := window()
				der, err := Issue(ca, caCert, c.ek, testInfo, nb, na)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Check(der, caCert, c.ek)
				if err != nil {
					t.Fatal(err)
				}
				if got.Info != testInfo {
					t.Errorf("Info %+v, want %+v", got.Info, testInfo)
				}
				if want := (TPMSpecification{SpecFamily, SpecLevel, SpecRevision}); got.Spec != want {
					t.Errorf("Spec %+v, want %+v", got.Spec, want)
				}
				if got.Certificate.KeyUsage != c.usage {
					t.Errorf("keyUsage %#x, want %#x", got.Certificate.KeyUsage, c.usage)
				}
				if !got.EK.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.ek) {
					t.Error("Cert.EK is not the EK")
				}
				if _, err := Check(der, caCert, nil); err != nil {
					t.Errorf("Check without wantEK: %v", err)
				}
				if _, err := Check(der, caCert, c.wrong); err == nil || !strings.Contains(err.Error(), "another key") {
					t.Errorf("Check with another key: %v", err)
				}
				if _, err := Check(der, otherCA, c.ek); err == nil {
					t.Error("Check accepted a certificate against another CA")
				}
			})
		}
	}
}

// The constants written into tcg-at-tpmSpecification are what the engine
// reports.
func TestSpecIsEngines(t *testing.T) {
	tpm := startEngine(t)
	rsp, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: 0x100, PropertyCount: 3}).Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		t.Fatal(err)
	}
	want := map[gt.TPMPT]uint32{0x100: 0x322E3000, 0x101: SpecLevel, 0x102: SpecRevision}
	for _, p := range props.TPMProperty {
		if w, ok := want[p.Property]; ok && p.Value != w {
			t.Errorf("property %#x = %#x, the certificate says %#x", p.Property, p.Value, w)
		}
		delete(want, p.Property)
	}
	if len(want) != 0 {
		t.Errorf("properties not reported: %v", want)
	}
	if SpecFamily != "2.0" {
		t.Errorf("family %q", SpecFamily)
	}
}

// extByOID returns the extension id of c.
func extByOID(t *testing.T, c *x509.Certificate, id asn1.ObjectIdentifier) (critical bool, value []byte) {
	t.Helper()
	for _, e := range c.Extensions {
		if e.Id.Equal(id) {
			return e.Critical, e.Value
		}
	}
	t.Fatalf("no extension %v", id)
	return false, nil
}

// The profile's fields, read back with crypto/x509 and encoding/asn1
// rather than this package's parsers.
func TestProfileFields(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	nb, na := window()
	der, err := Issue(ca, caCert, &k.PublicKey, testInfo, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 3 {
		t.Errorf("version %d", c.Version)
	}
	if c.SerialNumber.Sign() <= 0 || len(c.SerialNumber.Bytes()) > 20 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	if !bytes.Equal(c.RawSubject, []byte{0x30, 0}) {
		t.Errorf("subject %x, want empty", c.RawSubject)
	}
	if !bytes.Equal(c.RawIssuer, caCert.RawSubject) {
		t.Error("issuer is not the CA's subject")
	}
	if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(na) {
		t.Errorf("validity %v..%v, want %v..%v", c.NotBefore, c.NotAfter, nb, na)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm %v", c.SignatureAlgorithm)
	}
	if len(c.Extensions) != 6 {
		t.Errorf("%d extensions, want 6", len(c.Extensions))
	}
	for _, w := range []struct {
		id       asn1.ObjectIdentifier
		critical bool
	}{
		{oidSubjectAltName, true},
		{oidBasicConstraints, true},
		{oidKeyUsage, true},
		{oidAuthorityKeyIdentifier, false},
		{oidSubjectDirectoryAttributes, false},
		{oidExtendedKeyUsage, false},
	} {
		if crit, _ := extByOID(t, c, w.id); crit != w.critical {
			t.Errorf("extension %v critical=%v, want %v", w.id, crit, w.critical)
		}
	}
	if !c.BasicConstraintsValid || c.IsCA {
		t.Error("basicConstraints: want cA FALSE")
	}
	if !bytes.Equal(c.AuthorityKeyId, caCert.SubjectKeyId) || len(c.AuthorityKeyId) == 0 {
		t.Error("authorityKeyIdentifier is not the CA's subjectKeyIdentifier")
	}
	if len(c.UnknownExtKeyUsage) != 1 || !c.UnknownExtKeyUsage[0].Equal(asn1.ObjectIdentifier{2, 23, 133, 8, 1}) || len(c.ExtKeyUsage) != 0 {
		t.Errorf("extendedKeyUsage %v %v", c.ExtKeyUsage, c.UnknownExtKeyUsage)
	}
	// crypto/x509 does not handle a SAN of only a directoryName.
	if len(c.UnhandledCriticalExtensions) != 1 || !c.UnhandledCriticalExtensions[0].Equal(oidSubjectAltName) {
		t.Errorf("unhandled critical extensions %v", c.UnhandledCriticalExtensions)
	}

	// subjectAltName: GeneralNames of one [4] directoryName, three
	// single-attribute RDNs of UTF8String.
	_, san := extByOID(t, c, oidSubjectAltName)
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(san, &names); err != nil || len(rest) != 0 || len(names) != 1 {
		t.Fatalf("SAN: %v, %d names", err, len(names))
	}
	if names[0].Class != asn1.ClassContextSpecific || names[0].Tag != 4 || !names[0].IsCompound {
		t.Fatalf("SAN name is not a directoryName: %+v", names[0])
	}
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	// A slice type whose name ends in SET is a SET OF to encoding/asn1.
	type rdnSET []atv
	var rdns []rdnSET
	if rest, err := asn1.Unmarshal(names[0].Bytes, &rdns); err != nil || len(rest) != 0 {
		t.Fatalf("directoryName: %v", err)
	}
	want := []struct {
		id  asn1.ObjectIdentifier
		val string
	}{
		{asn1.ObjectIdentifier{2, 23, 133, 2, 1}, "id:58565450"},
		{asn1.ObjectIdentifier{2, 23, 133, 2, 2}, "xenvtpm vTPM"},
		{asn1.ObjectIdentifier{2, 23, 133, 2, 3}, "id:00010000"},
	}
	if len(rdns) != len(want) {
		t.Fatalf("%d RDNs", len(rdns))
	}
	for i, w := range want {
		if len(rdns[i]) != 1 || !rdns[i][0].Type.Equal(w.id) || rdns[i][0].Value.Tag != asn1.TagUTF8String || string(rdns[i][0].Value.Bytes) != w.val {
			t.Errorf("RDN %d: %+v, want %v=%q UTF8String", i, rdns[i], w.id, w.val)
		}
	}

	// subjectDirectoryAttributes: tcg-at-tpmSpecification.
	_, sda := extByOID(t, c, oidSubjectDirectoryAttributes)
	var attrs []struct {
		Type   asn1.ObjectIdentifier
		Values []struct {
			Family   string `asn1:"utf8"`
			Level    int
			Revision int
		} `asn1:"set"`
	}
	if rest, err := asn1.Unmarshal(sda, &attrs); err != nil || len(rest) != 0 {
		t.Fatalf("SDA: %v", err)
	}
	if len(attrs) != 1 || !attrs[0].Type.Equal(asn1.ObjectIdentifier{2, 23, 133, 2, 16}) || len(attrs[0].Values) != 1 {
		t.Fatalf("SDA %+v", attrs)
	}
	if v := attrs[0].Values[0]; v.Family != "2.0" || v.Level != 0 || v.Revision != 159 {
		t.Errorf("TPMSpecification %+v", v)
	}
}

func TestNewCA(t *testing.T) {
	for _, alg := range []string{"ecdsa", "rsa"} {
		k, c := newCA(t, alg)
		if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
			t.Errorf("%s: basicConstraints cA=%v pathlen=%d", alg, c.IsCA, c.MaxPathLen)
		}
		if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
			t.Errorf("%s: keyUsage %#x", alg, c.KeyUsage)
		}
		if c.Subject.CommonName != "xenvtpm group test CA" || len(c.SubjectKeyId) == 0 {
			t.Errorf("%s: subject %v ski %x", alg, c.Subject, c.SubjectKeyId)
		}
		if err := c.CheckSignatureFrom(c); err != nil {
			t.Errorf("%s: not self-signed: %v", alg, err)
		}
		if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PublicKey) {
			t.Errorf("%s: key and certificate differ", alg)
		}
		switch pk := c.PublicKey.(type) {
		case *ecdsa.PublicKey:
			if alg != "ecdsa" || pk.Curve != elliptic.P256() {
				t.Errorf("%s: key on %v", alg, pk.Curve.Params().Name)
			}
		case *rsa.PublicKey:
			if alg != "rsa" || pk.N.BitLen() != 2048 {
				t.Errorf("%s: RSA %d", alg, pk.N.BitLen())
			}
		}
	}
	for _, bad := range []struct{ name, alg string }{{"", "ecdsa"}, {"x", "ed25519"}, {strings.Repeat("x", 65), "rsa"}, {"\xff", "ecdsa"}} {
		if _, _, err := NewCA(bad.name, bad.alg); err == nil {
			t.Errorf("NewCA(%q, %q) accepted", bad.name, bad.alg)
		}
	}
}

func TestIssueRefuses(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb, na := window()
	leaf, err := Issue(ca, caCert, &p256.PublicKey, testInfo, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	leafCert, _ := x509.ParseCertificate(leaf)
	for _, c := range []struct {
		name   string
		ek     crypto.PublicKey
		info   TPMInfo
		nb, na time.Time
		caCert *x509.Certificate
	}{
		{"rsa-1024", &rsa1024.PublicKey, testInfo, nb, na, caCert},
		{"p-384", &p384.PublicKey, testInfo, nb, na, caCert},
		{"private key", p256, testInfo, nb, na, caCert},
		{"empty model", &p256.PublicKey, TPMInfo{1, "", 1}, nb, na, caCert},
		{"long model", &p256.PublicKey, TPMInfo{1, strings.Repeat("m", 256), 1}, nb, na, caCert},
		{"model not UTF-8", &p256.PublicKey, TPMInfo{1, "\xc3", 1}, nb, na, caCert},
		{"notAfter before notBefore", &p256.PublicKey, testInfo, na, nb, caCert},
		{"issuer not a CA", &p256.PublicKey, testInfo, nb, na, leafCert},
		{"no issuer", &p256.PublicKey, testInfo, nb, na, nil},
	} {
		if _, err := Issue(ca, c.caCert, c.ek, c.info, c.nb, c.na); err == nil {
			t.Errorf("%s: Issue accepted", c.name)
		}
	}
	// The signer must be the CA certificate's key.
	wrong, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := Issue(wrong, caCert, &p256.PublicKey, testInfo, nb, na); err == nil {
		t.Error("Issue signed with a key that is not the CA's")
	}
}

// The model's full range of lengths and the ids' extremes round-trip.
func TestInfoRoundTrip(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb, na := window()
	for _, info := range []TPMInfo{
		{0, "m", 0},
		{0xFFFFFFFF, strings.Repeat("é", 127) + "x", 0xFFFFFFFF},
		{0x49465800, "SLB9670", 0x0007003F},
	} {
		der, err := Issue(ca, caCert, &k.PublicKey, info, nb, na)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Check(der, caCert, &k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if c.Info != info {
			t.Errorf("Info %+v, want %+v", c.Info, info)
		}
	}
}

// The RFC 5280 "no expiry" notAfter is written as GeneralizedTime and
// accepted.
func TestNoExpiry(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb, _ := window()
	der, err := Issue(ca, caCert, &k.PublicKey, testInfo, nb, NoExpiry)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Check(der, caCert, &k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Certificate.NotAfter.Equal(NoExpiry) {
		t.Errorf("notAfter %v", c.Certificate.NotAfter)
	}
	if !bytes.Contains(der, []byte("99991231235959Z")) {
		t.Error("notAfter is not 99991231235959Z")
	}
}

// The default EK templates, by the profile's names.
var (
	gtRSAEK = gt.RSAEKTemplate // template L-1
	gtECCEK = gt.ECCEKTemplate // template L-2
)

// A TPM 1.2's EK certificate names the TPM 1.2 specification and checks
// like any other.
func TestIssue12(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	nb, na := window()
	der, err := Issue12(ca, caCert, &k.PublicKey, testInfo, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Check(der, caCert, &k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec != (TPMSpecification{Family: "1.2", Level: 2, Revision: 116}) || c.Info != testInfo {
		t.Errorf("spec %+v, info %+v", c.Spec, c.Info)
	}
}
