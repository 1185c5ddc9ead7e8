package ekcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// signed issues, with ca, the profile's certificate for ek after mutate
// changed its template: a certificate the CA really signed that Check
// must judge on its content.
func signed(t *testing.T, ca crypto.Signer, caCert *x509.Certificate, ek crypto.PublicKey, usage x509.KeyUsage, mutate func(*x509.Certificate)) []byte {
	t.Helper()
	nb, na := window()
	tmpl, err := ekTemplate(usage, testInfo, TPMSpecification{Family: SpecFamily, Level: SpecLevel, Revision: SpecRevision}, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	mutate(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, ek, ca)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// setExtra replaces (or, with value nil, removes) the extra extension id.
func setExtra(c *x509.Certificate, id asn1.ObjectIdentifier, critical bool, value []byte) {
	var out []pkix.Extension
	for _, e := range c.ExtraExtensions {
		if !e.Id.Equal(id) {
			out = append(out, e)
		}
	}
	if value != nil {
		out = append(out, pkix.Extension{Id: id, Critical: critical, Value: value})
	}
	c.ExtraExtensions = out
}

// Certificates the CA signed but that break the profile are refused.
func TestCheckRefusesOffProfile(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	eck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek := &eck.PublicKey
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	r1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	san, _ := marshalSAN(testInfo)
	sda, _ := marshalSDA(TPMSpecification{"2.0", 0, 159})
	ka := x509.KeyUsageKeyAgreement

	// A CA certificate with the same key and name but another
	// subjectKeyIdentifier: what it signs verifies under caCert's key
	// but names another key in its authorityKeyIdentifier.
	twinTmpl := *caCert
	twinTmpl.SubjectKeyId = []byte{1, 2, 3, 4}
	twinDER, err := x509.CreateCertificate(rand.Reader, &twinTmpl, &twinTmpl, ca.Public(), ca)
	if err != nil {
		t.Fatal(err)
	}
	twin, _ := x509.ParseCertificate(twinDER)

	for _, c := range []struct {
		name   string
		ek     crypto.PublicKey
		usage  x509.KeyUsage
		mutate func(*x509.Certificate)
		issuer *x509.Certificate
		want   string
	}{
		{"SAN not critical", ek, ka, func(c *x509.Certificate) { setExtra(c, oidSubjectAltName, false, san) }, nil, "not critical"},
		{"no SAN", ek, ka, func(c *x509.Certificate) { setExtra(c, oidSubjectAltName, false, nil) }, nil, "missing"},
		{"SAN with a DNS name too", ek, ka, func(c *x509.Certificate) { setExtra(c, oidSubjectAltName, true, plusDNSName(san)) }, nil, "subjectAltName"},
		{"SAN with a trailing byte", ek, ka, func(c *x509.Certificate) {
			setExtra(c, oidSubjectAltName, true, append(append([]byte(nil), san...), 0))
		}, nil, ""},
		{"no SDA", ek, ka, func(c *x509.Certificate) { setExtra(c, oidSubjectDirectoryAttributes, false, nil) }, nil, "missing"},
		{"SDA critical", ek, ka, func(c *x509.Certificate) { setExtra(c, oidSubjectDirectoryAttributes, true, sda) }, nil, "critical"},
		{"no EKU", ek, ka, func(c *x509.Certificate) { c.UnknownExtKeyUsage = nil }, nil, "missing"},
		{"EKU serverAuth too", ek, ka, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, nil, "extendedKeyUsage"},
		{"EKU another purpose", ek, ka, func(c *x509.Certificate) { c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{2, 23, 133, 8, 3}} }, nil, "extendedKeyUsage"},
		{"keyUsage lets the EK sign", ek, ka | x509.KeyUsageDigitalSignature, func(*x509.Certificate) {}, nil, "keyUsage"},
		{"keyUsage of an RSA EK on an ECC EK", ek, x509.KeyUsageKeyEncipherment, func(*x509.Certificate) {}, nil, "keyUsage"},
		{"keyUsage of an ECC EK on an RSA EK", &rk.PublicKey, ka, func(*x509.Certificate) {}, nil, "keyUsage"},
		{"no keyUsage", ek, 0, func(*x509.Certificate) {}, nil, "missing"},
		{"cA TRUE", ek, ka, func(c *x509.Certificate) { c.IsCA = true }, nil, "basicConstraints"},
		{"no basicConstraints", ek, ka, func(c *x509.Certificate) { c.BasicConstraintsValid = false }, nil, "missing"},
		{"extension outside the profile", ek, ka, func(c *x509.Certificate) {
			setExtra(c, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, false, []byte{5, 0})
		}, nil, "not in the profile"},
		{"subjectKeyIdentifier critical", ek, ka, func(c *x509.Certificate) {
			setExtra(c, oidSubjectKeyIdentifier, true, []byte{4, 1, 0})
		}, nil, "critical"},
		{"RSA-1024 EK", &r1024.PublicKey, x509.KeyUsageKeyEncipherment, func(*x509.Certificate) {}, nil, "2048"},
		{"P-384 EK", &p384.PublicKey, ka, func(*x509.Certificate) {}, nil, "P-256"},
		{"authorityKeyIdentifier of another key", ek, ka, func(*x509.Certificate) {}, twin, "authorityKeyIdentifier"},
	} {
		t.Run(c.name, func(t *testing.T) {
			issuer := caCert
			if c.issuer != nil {
				issuer = c.issuer
			}
			der := signed(t, ca, issuer, c.ek, c.usage, c.mutate)
			_, err := Check(der, caCert, nil)
			if err == nil {
				t.Fatal("Check accepted it")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}

	// The profile allows a subject; the SAN may then be non-critical.
	der := signed(t, ca, caCert, ek, ka, func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "tpm"}
		setExtra(c, oidSubjectAltName, false, san)
	})
	if _, err := Check(der, caCert, ek); err != nil {
		t.Errorf("a subject and a non-critical SAN: %v", err)
	}
}

// Check refuses an issuer that is not a CA, and a certificate outside its
// validity.
func TestCheckIssuerAndTime(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb, na := window()
	der, err := Issue(ca, caCert, &k.PublicKey, testInfo, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	if _, err := Check(der, leaf, nil); err == nil {
		t.Error("Check accepted a non-CA issuer")
	}
	if _, err := Check(der, nil, nil); err == nil {
		t.Error("Check accepted no issuer")
	}
	// A CA with an empty name: what it issues has an empty issuer.
	anon := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: nb, NotAfter: na, BasicConstraintsValid: true,
		IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	anonDER, err := x509.CreateCertificate(rand.Reader, anon, anon, ca.Public(), ca)
	if err != nil {
		t.Fatal(err)
	}
	anonCA, _ := x509.ParseCertificate(anonDER)
	der2, err := Issue(ca, anonCA, &k.PublicKey, testInfo, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(der2, anonCA, nil); err == nil || !strings.Contains(err.Error(), "issuer name is empty") {
		t.Errorf("empty issuer: %v", err)
	}
	for _, now := range []time.Time{nb.Add(-time.Second), na.Add(time.Second)} {
		if _, err := check(der, caCert, nil, now); err == nil || !strings.Contains(err.Error(), "expired or is not yet valid") {
			t.Errorf("at %v: %v", now, err)
		}
	}
	for _, now := range []time.Time{nb, na} {
		if _, err := check(der, caCert, nil, now); err != nil {
			t.Errorf("at %v: %v", now, err)
		}
	}
}

// Every single-byte change of a certificate is refused: the signature
// covers all of it, and what is outside (the outer algorithm and the
// signature) breaks the signature or the parse.
func TestCheckRefusesEveryByteFlip(t *testing.T) {
	tpm := startEngine(t)
	for _, alg := range []string{"ecdsa", "rsa"} {
		ca, caCert := newCA(t, alg)
		for _, ek := range []crypto.PublicKey{createEK(t, tpm, gtRSAEK), createEK(t, tpm, gtECCEK)} {
			nb, na := window()
			der, err := Issue(ca, caCert, ek, testInfo, nb, na)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Check(der, caCert, ek); err != nil {
				t.Fatal(err)
			}
			mut := make([]byte, len(der))
			for i := range der {
				for _, x := range []byte{0x01, 0x80, 0xFF} {
					copy(mut, der)
					mut[i] ^= x
					if _, err := Check(mut, caCert, ek); err == nil {
						t.Errorf("%s CA, %T EK: byte %d ^ %#x accepted", alg, ek, i, x)
					}
				}
			}
		}
	}
}

// rdnSpec is one RDN for sanWith: attributes of (oid, tag, value).
type rdnSpec []struct {
	oid asn1.ObjectIdentifier
	tag casn1.Tag
	val string
}

// sanWith builds a subjectAltName of one directoryName of rdns.
func sanWith(rdns ...rdnSpec) []byte {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tagDirectoryName, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, r := range rdns {
					b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
						for _, a := range r {
							b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1ObjectIdentifier(a.oid)
								b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.val)) })
							})
						}
					})
				}
			})
		})
	})
	return b.BytesOrPanic()
}

// plusDNSName appends a dNSName "x" to the GeneralNames san (short
// form lengths only).
func plusDNSName(san []byte) []byte {
	inner := append(append([]byte(nil), san[2:]...), 0x82, 0x01, 'x')
	return append([]byte{0x30, byte(len(inner))}, inner...)
}

func one(oid asn1.ObjectIdentifier, val string) rdnSpec {
	return rdnSpec{{oid, casn1.UTF8String, val}}
}

func TestParseSAN(t *testing.T) {
	m, md, v := oidTPMManufacturer, oidTPMModel, oidTPMVersion
	good := []struct {
		der  []byte
		want TPMInfo
	}{
		{sanWith(one(m, "id:58565450"), one(md, "x"), one(v, "id:00010000")), TPMInfo{0x58565450, "x", 0x10000}},
		// Any order; lower-case hexadecimal.
		{sanWith(one(v, "id:0007003f"), one(m, "id:49465800"), one(md, "SLB9670")), TPMInfo{0x49465800, "SLB9670", 0x7003F}},
	}
	for i, g := range good {
		got, err := parseSAN(g.der)
		if err != nil || got != g.want {
			t.Errorf("good %d: %+v, %v", i, got, err)
		}
	}
	bad := map[string][]byte{
		"empty":                {},
		"trailing byte":        append(sanWith(one(m, "id:00000000"), one(md, "x"), one(v, "id:00000000")), 0),
		"manufacturer missing": sanWith(one(md, "x"), one(v, "id:00000000")),
		"model missing":        sanWith(one(m, "id:00000000"), one(v, "id:00000000")),
		"version missing":      sanWith(one(m, "id:00000000"), one(md, "x")),
		"twice":                sanWith(one(m, "id:00000000"), one(md, "x"), one(v, "id:00000000"), one(md, "y")),
		"unknown attribute":    sanWith(one(m, "id:00000000"), one(md, "x"), one(v, "id:00000000"), one(asn1.ObjectIdentifier{2, 5, 4, 3}, "cn")),
		"multi-valued RDN": sanWith(rdnSpec{{m, casn1.UTF8String, "id:00000000"}, {md, casn1.UTF8String, "x"}},
			one(v, "id:00000000")),
		"PrintableString":   sanWith(rdnSpec{{m, casn1.PrintableString, "id:00000000"}}, one(md, "x"), one(v, "id:00000000")),
		"empty model":       sanWith(one(m, "id:00000000"), one(md, ""), one(v, "id:00000000")),
		"long model":        sanWith(one(m, "id:00000000"), one(md, strings.Repeat("x", 256)), one(v, "id:00000000")),
		"model not UTF-8":   sanWith(one(m, "id:00000000"), one(md, "\xff"), one(v, "id:00000000")),
		"id without id:":    sanWith(one(m, "0x000000"), one(md, "x"), one(v, "id:00000000")),
		"id short":          sanWith(one(m, "id:0000000"), one(md, "x"), one(v, "id:00000000")),
		"id not hex":        sanWith(one(m, "id:0000000g"), one(md, "x"), one(v, "id:00000000")),
		"id signed":         sanWith(one(m, "id:+0000000"), one(md, "x"), one(v, "id:00000000")),
		"version not an id": sanWith(one(m, "id:00000000"), one(md, "x"), one(v, "1.0")),
		"dNSName":           {0x30, 0x03, 0x82, 0x01, 'x'},
		"two names":         plusDNSName(sanWith(one(m, "id:00000000"), one(md, "x"), one(v, "id:00000000"))),
	}
	for name, der := range bad {
		if info, err := parseSAN(der); err == nil {
			t.Errorf("%s: accepted as %+v", name, info)
		}
	}
}

func TestParseSDA(t *testing.T) {
	for _, s := range []TPMSpecification{{"2.0", 0, 159}, {"2.0", 0, 0}, {"1.2", 2, 116}} {
		der, err := marshalSDA(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseSDA(der)
		if err != nil || got != s {
			t.Errorf("%+v: %+v, %v", s, got, err)
		}
	}
	for _, s := range []TPMSpecification{{"", 0, 0}, {"2.0", -1, 0}, {"2.0", 0, -1}, {strings.Repeat("x", 256), 0, 0}} {
		if _, err := marshalSDA(s); err == nil {
			t.Errorf("marshalSDA(%+v) accepted", s)
		}
	}
	good, _ := marshalSDA(TPMSpecification{"2.0", 0, 159})
	enc := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type spec struct {
		Family   string `asn1:"utf8"`
		Level    int
		Revision int
	}
	type printable struct {
		Family   string `asn1:"printable"`
		Level    int
		Revision int
	}
	type attr struct {
		Type   asn1.ObjectIdentifier
		Values []any `asn1:"set"`
	}
	bad := map[string][]byte{
		"empty":           {},
		"trailing byte":   append(append([]byte(nil), good...), 0),
		"no attribute":    enc([]attr{}),
		"two attributes":  enc([]attr{{oidTPMSpecification, []any{spec{"2.0", 0, 159}}}, {oidTPMSpecification, []any{spec{"2.0", 0, 159}}}}),
		"other attribute": enc([]attr{{asn1.ObjectIdentifier{2, 23, 133, 2, 18}, []any{spec{"2.0", 0, 159}}}}),
		"two values":      enc([]attr{{oidTPMSpecification, []any{spec{"2.0", 0, 159}, spec{"2.0", 0, 159}}}}),
		"PrintableString": enc([]attr{{oidTPMSpecification, []any{printable{"2.0", 0, 159}}}}),
		"negative level":  enc([]attr{{oidTPMSpecification, []any{spec{"2.0", -1, 159}}}}),
		"empty family":    enc([]attr{{oidTPMSpecification, []any{spec{"", 0, 159}}}}),
		"huge revision": enc([]attr{{oidTPMSpecification, []any{struct {
			Family   string `asn1:"utf8"`
			Level    int
			Revision *big.Int
		}{"2.0", 0, new(big.Int).Lsh(big.NewInt(1), 80)}}}}),
	}
	if _, err := parseSDA(enc([]attr{{oidTPMSpecification, []any{spec{"2.0", 0, 159}}}})); err != nil {
		t.Fatalf("encoding/asn1's encoding refused: %v", err)
	}
	for name, der := range bad {
		if s, err := parseSDA(der); err == nil {
			t.Errorf("%s: accepted as %+v", name, s)
		}
	}
}

// The serial number is positive and at most 20 octets of DER: 2^159-1
// is the largest accepted. (crypto/x509 will not sign a negative one.)
func TestCheckSerial(t *testing.T) {
	ca, caCert := newCA(t, "ecdsa")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	top := new(big.Int).Lsh(big.NewInt(1), 159)
	for _, c := range []struct {
		serial *big.Int
		ok     bool
	}{
		{big.NewInt(1), true},
		{new(big.Int).Sub(top, big.NewInt(1)), true},
		{top, false},
		{big.NewInt(0), false},
	} {
		der := signed(t, ca, caCert, &k.PublicKey, x509.KeyUsageKeyAgreement, func(x *x509.Certificate) { x.SerialNumber = c.serial })
		if _, err := Check(der, caCert, nil); (err == nil) != c.ok {
			t.Errorf("serial %v: %v", c.serial, err)
		}
	}
	// Issue's serials are random and in range.
	seen := map[string]bool{}
	for range 32 {
		s, err := randomSerial()
		if err != nil || s.Sign() <= 0 || s.Cmp(top) >= 0 || seen[s.String()] {
			t.Fatalf("serial %v, %v", s, err)
		}
		seen[s.String()] = true
	}
}
