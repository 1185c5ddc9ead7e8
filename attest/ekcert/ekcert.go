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
	"errors"
	"fmt"
	"math/big"
	"time"
	"unicode/utf8"
)

// Object identifiers of the profile and of RFC 5280 that crypto/x509 does
// not name.
var (
	oidTPMManufacturer  = asn1.ObjectIdentifier{2, 23, 133, 2, 1}  // tcg-at-tpmManufacturer
	oidTPMModel         = asn1.ObjectIdentifier{2, 23, 133, 2, 2}  // tcg-at-tpmModel
	oidTPMVersion       = asn1.ObjectIdentifier{2, 23, 133, 2, 3}  // tcg-at-tpmVersion
	oidTPMSpecification = asn1.ObjectIdentifier{2, 23, 133, 2, 16} // tcg-at-tpmSpecification
	oidEKCertificate    = asn1.ObjectIdentifier{2, 23, 133, 8, 1}  // tcg-kp-EKCertificate

	oidSubjectDirectoryAttributes = asn1.ObjectIdentifier{2, 5, 29, 9}
	oidSubjectAltName             = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints           = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage                   = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidAuthorityKeyIdentifier     = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtendedKeyUsage           = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// The TPM specification the project's engine (emulator/tpm2) implements,
// as it reports it in TPM_PT_FAMILY_INDICATOR, TPM_PT_LEVEL and
// TPM_PT_REVISION; Issue writes it into tcg-at-tpmSpecification.
const (
	SpecFamily   = "2.0"
	SpecLevel    = 0
	SpecRevision = 159 // 1.59
)

// strMax is the profile's STRMAX, the longest tcg-at-tpmModel (and TPM
// specification family) string.
const strMax = 255

// TPMInfo names a TPM in the certificate's subjectAltName.
type TPMInfo struct {
	// Manufacturer is the TPM's TPM_PT_MANUFACTURER, written as
	// "id:XXXXXXXX".
	Manufacturer uint32
	// Model is the TPM's model (part number), 1 to 255 bytes of UTF-8.
	Model string
	// Version is the TPM's firmware version (TPM_PT_FIRMWARE_VERSION_1),
	// written as "id:XXXXXXXX".
	Version uint32
}

// TPMSpecification is the tcg-at-tpmSpecification attribute: the family,
// level and revision of the TPM specification the TPM follows.
type TPMSpecification struct {
	Family   string
	Level    int64
	Revision int64
}

// Cert is an EK certificate that Check accepted.
type Cert struct {
	// EK is the certified endorsement key: an *rsa.PublicKey of 2048 bits
	// or an *ecdsa.PublicKey on P-256.
	EK   crypto.PublicKey
	Info TPMInfo
	Spec TPMSpecification
	// Certificate is the parsed certificate, for its serial number,
	// validity and issuer.
	Certificate *x509.Certificate
}

// maxSerial bounds the random serial numbers: below 2^159 so that a
// positive serial fits the 20 octets RFC 5280 and the profile allow.
var maxSerial = new(big.Int).Lsh(big.NewInt(1), 159)

// randomSerial returns a random serial number in [1, 2^159).
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Sub(maxSerial, big.NewInt(1)))
	if err != nil {
		return nil, fmt.Errorf("ekcert: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// NoExpiry is RFC 5280's notAfter for a certificate with no well-defined
// expiration date (section 4.1.2.5), which the profile allows.
var NoExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// NewCA makes a self-signed CA for a group's EK certificates: a key of
// alg "ecdsa" (P-256) or "rsa" (2048 bits), and a certificate named
// CN=name that may sign end-entity certificates only (pathlen 0,
// keyCertSign and cRLSign). It has no expiry because the EK certificates
// it signs have none either, and it is valid from an hour back so that a
// verifier whose clock lags the manager's a little still accepts it.
func NewCA(name string, alg string) (crypto.Signer, *x509.Certificate, error) {
	return NewCAAt(name, alg, time.Now())
}

// NewCAAt is NewCA with now as the time of day.
func NewCAAt(name string, alg string, now time.Time) (crypto.Signer, *x509.Certificate, error) {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return nil, nil, errors.New("ekcert: a CA name is 1 to 64 bytes of UTF-8 (RFC 5280 ub-common-name)")
	}
	var key crypto.Signer
	var err error
	switch alg {
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		// 2048 bits, as the EKs: a TPM can then check the CA's
		// signatures itself (TPM2_VerifySignature).
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, nil, fmt.Errorf("ekcert: CA algorithm %q: want \"ecdsa\" or \"rsa\"", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ekcert: CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour).Truncate(time.Second),
		NotAfter:              NoExpiry,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// crypto/x509 derives the subjectKeyIdentifier, which becomes
		// the EK certificates' authorityKeyIdentifier.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("ekcert: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("ekcert: CA certificate: %w", err)
	}
	return key, cert, nil
}

// Issue makes the EK certificate of ek, an *rsa.PublicKey of 2048 bits or
// an *ecdsa.PublicKey on P-256, for the TPM info names, signed by ca whose
// certificate is caCert, valid from notBefore to notAfter (RFC 5280's
// 9999-12-31T23:59:59Z for no expiry). It returns the DER encoding, which
// is what goes into the NV index (NVIndexRSA2048Cert, NVIndexECCP256Cert).
func Issue(ca crypto.Signer, caCert *x509.Certificate, ek crypto.PublicKey, info TPMInfo, notBefore, notAfter time.Time) ([]byte, error) {
	return issue(ca, caCert, ek, info, TPMSpecification{Family: SpecFamily, Level: SpecLevel, Revision: SpecRevision}, notBefore, notAfter)
}

// Issue12 makes the EK certificate of a TPM 1.2's EK (RSA-2048), as
// Issue, naming the TPM 1.2 specification (family "1.2", level 2,
// revision 116) in its subjectDirectoryAttributes, as the TCG Credential
// Profiles for TPM 1.2 do. The key is given as rsaEncryption, not the
// profile's id-RSAES-OAEP (which crypto/x509 does not write); the EK is
// still an OAEP key (SHA-1, MGF1, label "TCPA") in the TPM. It goes into
// the TPM's NV index TPM_NV_INDEX_EKCert.
func Issue12(ca crypto.Signer, caCert *x509.Certificate, ek *rsa.PublicKey, info TPMInfo, notBefore, notAfter time.Time) ([]byte, error) {
	return issue(ca, caCert, ek, info, TPMSpecification{Family: "1.2", Level: 2, Revision: 116}, notBefore, notAfter)
}

func issue(ca crypto.Signer, caCert *x509.Certificate, ek crypto.PublicKey, info TPMInfo, spec TPMSpecification, notBefore, notAfter time.Time) ([]byte, error) {
	usage, err := ekKeyUsage(ek)
	if err != nil {
		return nil, err
	}
	if err := checkInfo(info); err != nil {
		return nil, err
	}
	if !notBefore.Before(notAfter) {
		return nil, errors.New("ekcert: notBefore is not before notAfter")
	}
	if caCert == nil || !caCert.IsCA || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ekcert: the issuer is not a CA that may sign certificates")
	}
	if len(caCert.SubjectKeyId) == 0 {
		// The profile requires an authorityKeyIdentifier, which
		// crypto/x509 takes from the issuer's subjectKeyIdentifier.
		return nil, errors.New("ekcert: the CA certificate has no subjectKeyIdentifier")
	}
	tmpl, err := ekTemplate(usage, info, spec, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, ek, ca)
	if err != nil {
		return nil, fmt.Errorf("ekcert: %w", err)
	}
	return der, nil
}

// ekKeyUsage returns the keyUsage of an EK certificate for ek, and refuses
// keys that the default EK templates do not make.
func ekKeyUsage(ek crypto.PublicKey) (x509.KeyUsage, error) {
	switch k := ek.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() != 2048 || k.E != 65537 {
			return 0, errors.New("ekcert: an RSA EK is 2048 bits with exponent 65537 (template L-1)")
		}
		return x509.KeyUsageKeyEncipherment, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return 0, errors.New("ekcert: an ECC EK is on NIST P-256 (template L-2)")
		}
		return x509.KeyUsageKeyAgreement, nil
	}
	return 0, fmt.Errorf("ekcert: EK of type %T: want *rsa.PublicKey or *ecdsa.PublicKey", ek)
}

// checkInfo refuses a TPMInfo the profile cannot carry.
func checkInfo(info TPMInfo) error {
	if info.Model == "" || len(info.Model) > strMax || !utf8.ValidString(info.Model) {
		return errors.New("ekcert: the TPM model is 1 to 255 bytes of UTF-8")
	}
	return nil
}

// ekTemplate is the profile's EK certificate for crypto/x509 to complete
// with the key, the issuer and its authorityKeyIdentifier.
func ekTemplate(usage x509.KeyUsage, info TPMInfo, spec TPMSpecification, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	san, err := marshalSAN(info)
	if err != nil {
		return nil, err
	}
	sda, err := marshalSDA(spec)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		// The profile's EK certificate has an empty subject: the TPM is
		// named only by the subjectAltName, which is critical for that
		// reason (RFC 5280 section 4.2.1.6).
		Subject:               pkix.Name{},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true, // crypto/x509 marks it critical
		IsCA:                  false,
		KeyUsage:              usage, // crypto/x509 marks it critical
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidEKCertificate},
		ExtraExtensions: []pkix.Extension{
			{Id: oidSubjectAltName, Critical: true, Value: san},
			{Id: oidSubjectDirectoryAttributes, Critical: false, Value: sda},
		},
	}, nil
}
