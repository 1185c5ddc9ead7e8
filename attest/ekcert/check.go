package ekcert

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"
)

// emptyName is the DER of an empty Name, an EK certificate's subject.
var emptyName = []byte{0x30, 0x00}

// Extensions the profile allows beside the ones it requires; crypto/x509
// parses and checks them.
var (
	oidSubjectKeyIdentifier  = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidCRLDistributionPoints = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidCertificatePolicies   = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidAuthorityInfoAccess   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
)

// Check parses der as an EK certificate of this package's profile and
// verifies it was signed by caCert and is valid now. It refuses a
// certificate whose EK is not RSA-2048 or P-256, whose required
// extensions (subjectAltName, basicConstraints, keyUsage,
// authorityKeyIdentifier, subjectDirectoryAttributes, extendedKeyUsage)
// are missing, malformed or of the wrong criticality, or that has an
// extension the profile does not name. If wantEK is not nil, the
// certified key must equal it.
func Check(der []byte, caCert *x509.Certificate, wantEK crypto.PublicKey) (*Cert, error) {
	c, err := check(der, caCert, wantEK, time.Now())
	if err != nil {
		return nil, fmt.Errorf("ekcert: %w", err)
	}
	return c, nil
}

func check(der []byte, caCert *x509.Certificate, wantEK crypto.PublicKey, now time.Time) (*Cert, error) {
	if caCert == nil || !caCert.BasicConstraintsValid || !caCert.IsCA || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("the issuer is not a CA that may sign certificates")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if cert.Version != 3 {
		return nil, fmt.Errorf("version %d, want 3", cert.Version)
	}
	// Positive and at most 20 octets in DER (RFC 5280 section 4.1.2.2),
	// so at most 159 bits with the sign bit clear.
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 159 {
		return nil, errors.New("the serial number is not positive or longer than 20 octets")
	}
	if bytes.Equal(cert.RawIssuer, emptyName) {
		// Verify would chain it to a CA with an empty name; the
		// profile requires an issuer.
		return nil, errors.New("the issuer name is empty")
	}
	usage, err := ekKeyUsage(cert.PublicKey)
	if err != nil {
		return nil, err
	}
	subjectEmpty := bytes.Equal(cert.RawSubject, emptyName)

	out := &Cert{EK: cert.PublicKey, Certificate: cert}
	var haveSAN, haveBC, haveKU, haveAKI, haveSDA, haveEKU bool
	for _, e := range cert.Extensions {
		switch {
		case e.Id.Equal(oidSubjectAltName):
			// The subject is empty, so the name is here and the
			// extension critical (RFC 5280 section 4.2.1.6).
			if subjectEmpty && !e.Critical {
				return nil, errors.New("subjectAltName not critical with an empty subject")
			}
			if out.Info, err = parseSAN(e.Value); err != nil {
				return nil, err
			}
			haveSAN = true
		case e.Id.Equal(oidBasicConstraints):
			if !e.Critical || !cert.BasicConstraintsValid || cert.IsCA {
				return nil, errors.New("basicConstraints not critical or cA TRUE")
			}
			haveBC = true
		case e.Id.Equal(oidKeyUsage):
			// An EK decrypts (RSA) or agrees keys (ECC); a
			// certificate that lets it sign is not an EK's.
			if !e.Critical || cert.KeyUsage != usage {
				return nil, fmt.Errorf("keyUsage %#x critical=%v, want %#x critical", cert.KeyUsage, e.Critical, usage)
			}
			haveKU = true
		case e.Id.Equal(oidAuthorityKeyIdentifier):
			if e.Critical || len(cert.AuthorityKeyId) == 0 {
				return nil, errors.New("authorityKeyIdentifier critical or empty")
			}
			if len(caCert.SubjectKeyId) > 0 && !bytes.Equal(cert.AuthorityKeyId, caCert.SubjectKeyId) {
				return nil, errors.New("authorityKeyIdentifier does not name the CA's key")
			}
			haveAKI = true
		case e.Id.Equal(oidSubjectDirectoryAttributes):
			if e.Critical {
				return nil, errors.New("subjectDirectoryAttributes critical")
			}
			if out.Spec, err = parseSDA(e.Value); err != nil {
				return nil, err
			}
			haveSDA = true
		case e.Id.Equal(oidExtendedKeyUsage):
			if e.Critical || len(cert.ExtKeyUsage) != 0 || len(cert.UnknownExtKeyUsage) != 1 ||
				!cert.UnknownExtKeyUsage[0].Equal(oidEKCertificate) {
				return nil, errors.New("extendedKeyUsage is not tcg-kp-EKCertificate alone, non-critical")
			}
			haveEKU = true
		case e.Id.Equal(oidSubjectKeyIdentifier), e.Id.Equal(oidCRLDistributionPoints),
			e.Id.Equal(oidCertificatePolicies), e.Id.Equal(oidAuthorityInfoAccess):
			if e.Critical {
				return nil, fmt.Errorf("extension %v critical", e.Id)
			}
		default:
			return nil, fmt.Errorf("extension %v not in the profile", e.Id)
		}
	}
	if !haveSAN || !haveBC || !haveKU || !haveAKI || !haveSDA || !haveEKU {
		return nil, errors.New("a required extension is missing (subjectAltName, basicConstraints, keyUsage, authorityKeyIdentifier, subjectDirectoryAttributes, extendedKeyUsage)")
	}

	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return nil, err
	}
	// crypto/x509 lists a critical subjectAltName with only a
	// directoryName as unhandled, and Verify refuses it; parseSAN has
	// handled it. Verify runs on a copy so that the Cert returned still
	// shows what crypto/x509 made of the certificate.
	v := *cert
	v.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(cert.UnhandledCriticalExtensions),
		func(id asn1.ObjectIdentifier) bool { return id.Equal(oidSubjectAltName) })
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	if _, err := v.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		// The EK certificate's only extendedKeyUsage is
		// tcg-kp-EKCertificate, checked above.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, err
	}

	if wantEK != nil {
		eq, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(wantEK) {
			return nil, errors.New("the certificate is for another key")
		}
	}
	return out, nil
}
