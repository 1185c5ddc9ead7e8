package manager

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
)

// EK certificates (docs/manager-groups.md, "EK certificates"). Each group
// has a CA, a P-256 key made by the manager at the group's first
// certificate (or its first GROUP_CA_CERT) and kept in the group's record,
// inside the sealed store: it never leaves the manager. A vTPM sends the
// public areas of its endorsement keys (CERTIFY_EK) and gets certificates
// of the TCG EK Credential Profile (package attest/ekcert) that the vTPM
// keeps in its platform NV indices; dom0 exports the CA's certificate for
// verifiers (GROUP_CA_CERT, `xenvtpm group ca-cert`).
//
// The manager holds no vTPM's seeds, so it cannot derive a vTPM's EK
// itself: it certifies the key the vTPM domain names. A certificate thus
// says "the manager gave this key to a vTPM of this group", and a
// compromised vTPM domain can have its own certificates issued for keys
// of its choosing, never another vTPM's records or another group's CA.
// The manager refuses any public area but the default EK templates' (L-1
// RSA-2048, L-2 NIST P-256), so it never certifies a signing key.

// Bounds of the stored CA, for the group record's size limit.
const (
	maxCAKey  = 160  // a P-256 PKCS #8 key is 138 bytes
	maxCACert = 1024 // its self-signed certificate about 400
)

func unmarshalCA(b []byte) (key, cert []byte, err error) {
	take := func(max int) ([]byte, error) {
		if len(b) < 2 {
			return nil, errors.New("EK CA truncated")
		}
		n := int(binary.BigEndian.Uint16(b))
		if n == 0 || n > max || len(b) < 2+n {
			return nil, fmt.Errorf("EK CA field of %d bytes (1 to %d) with %d left", n, max, len(b)-2)
		}
		v := bytes.Clone(b[2 : 2+n])
		b = b[2+n:]
		return v, nil
	}
	if key, err = take(maxCAKey); err != nil {
		return nil, nil, err
	}
	if cert, err = take(maxCACert); err != nil {
		return nil, nil, err
	}
	if len(b) != 0 {
		return nil, nil, fmt.Errorf("%d bytes after the EK CA", len(b))
	}
	return key, cert, nil
}

// caName is the CA's common name: it names the group by its UUID, which
// `xenvtpm group show` prints, so a verifier holding several managers'
// CAs can tell them apart.
func caName(u [16]byte) string {
	return fmt.Sprintf("xenvtpm EK CA group %x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// groupCA returns the group's EK CA, making and committing it at the
// first need.
func (m *Manager) groupCA(id uint32) (crypto.Signer, *x509.Certificate, error) {
	m.mu.Lock()
	g := m.groups[id]
	m.mu.Unlock()
	if g == nil {
		return nil, nil, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	if g.caKey == nil {
		unlock := m.lockAdmin()
		var err error
		g, err = m.makeCA(id)
		unlock()
		if err != nil {
			return nil, nil, err
		}
	}
	k, err := x509.ParsePKCS8PrivateKey(g.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("manager: group %d: EK CA key: %w", id, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("manager: group %d: EK CA key of type %T", id, k)
	}
	cert, err := x509.ParseCertificate(g.caCert)
	if err != nil {
		return nil, nil, fmt.Errorf("manager: group %d: EK CA certificate: %w", id, err)
	}
	return signer, cert, nil
}

// makeCA gives group id a CA unless another request did first (lockAdmin
// held).
func (m *Manager) makeCA(id uint32) (*group, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	old := m.groups[id]
	m.mu.Unlock()
	if old == nil {
		return nil, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	if old.caKey != nil {
		return old, nil
	}
	key, cert, err := ekcert.NewCAAt(caName(old.uuid), "ecdsa", m.wallClock())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("manager: EK CA key: %w", err)
	}
	g := *old
	g.caKey, g.caCert = der, cert.Raw
	var b store.Batch
	putGroup(&b, old, &g)
	if err := m.adminCommit(&b); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.groups[id] = &g
	m.mu.Unlock()
	m.logf("manager: group %d has an EK CA (%s)", id, cert.Subject.CommonName)
	return &g, nil
}

// wallClock is the time of day certificates are dated with.
func (m *Manager) wallClock() time.Time {
	if m.cfg.WallClock != nil {
		return m.cfg.WallClock()
	}
	return m.clk.Now()
}

// GroupCACert returns the DER certificate of the group's EK CA.
func (m *Manager) GroupCACert(id uint32) ([]byte, error) {
	_, cert, err := m.groupCA(id)
	if err != nil {
		return nil, err
	}
	return cert.Raw, nil
}

// ekTemplates are the profile's default EK templates; a CERTIFY_EK public
// area must equal one but for its unique field.
var ekTemplates = []tpm2.TPMTPublic{tpm2.RSAEKTemplate, tpm2.ECCEKTemplate}

// ekPublicKey checks that pub is an EK made from a default template and
// returns its key.
func ekPublicKey(pub []byte) (crypto.PublicKey, error) {
	p, err := tpm2.Unmarshal[tpm2.TPMTPublic](pub)
	if err != nil || !bytes.Equal(tpm2.Marshal(p), pub) {
		return nil, fmt.Errorf("%w: the EK public area does not decode", proto.ErrBadRequest)
	}
	match := false
	for _, t := range ekTemplates {
		if p.Type != t.Type {
			continue
		}
		q := *p
		q.Unique = t.Unique
		match = bytes.Equal(tpm2.Marshal(q), tpm2.Marshal(t))
	}
	if !match {
		return nil, fmt.Errorf("%w: not an EK of the default RSA-2048 or P-256 template", proto.ErrKeyType)
	}
	k, err := tpm2.Pub(*p)
	if err != nil {
		return nil, fmt.Errorf("%w: EK: %w", proto.ErrBadRequest, err)
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() != 2048 {
			return nil, fmt.Errorf("%w: RSA EK of %d bits", proto.ErrBadRequest, k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if _, err := k.ECDH(); err != nil {
			return nil, fmt.Errorf("%w: ECC EK: %w", proto.ErrBadRequest, err)
		}
	}
	return k, nil
}

// ekPubKey12 decodes a TPM 1.2 EK's TPM_PUBKEY and refuses any other
// key: an EK is an RSA-2048 encryption key (TPM_ES_RSAESOAEP_SHA1_MGF1,
// TPM_SS_NONE; TPM 1.2 Part 1, 5.8), so the manager never certifies a
// signing key.
func ekPubKey12(pub []byte) (crypto.PublicKey, error) {
	k, err := hwtpm.ParsePubKey12(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrBadRequest, err)
	}
	if binary.BigEndian.Uint16(pub[4:]) != 0x0003 || binary.BigEndian.Uint16(pub[6:]) != 0x0001 || k.N.BitLen() != 2048 || k.E != 65537 {
		return nil, fmt.Errorf("%w: not a TPM 1.2 EK (RSA-2048, exponent 65537, OAEP encryption, no signature scheme)", proto.ErrKeyType)
	}
	return k, nil
}

// CertifyEK issues the EK certificate of the vTPM uuid's key in m, signed
// by its group's CA. The vTPM must have saved a key (its first save makes
// its record) and be in a group whose SAA approved this host.
func (m *Manager) CertifyEK(uuid [16]byte, req proto.CertifyEK) ([]byte, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	var ek crypto.PublicKey
	var err error
	if req.Family == proto.FamilyEK12 {
		ek, err = ekPubKey12(req.Public)
	} else {
		ek, err = ekPublicKey(req.Public)
	}
	if err != nil {
		return nil, err
	}
	rec, err := m.savedRecord(uuid)
	if err != nil {
		return nil, err
	}
	ca, caCert, err := m.groupCA(rec.Group)
	if err != nil {
		return nil, err
	}
	info := ekcert.TPMInfo{Manufacturer: req.Manufacturer, Model: req.Model, Version: req.Version}
	notBefore := m.wallClock().Add(-time.Hour).Truncate(time.Second)
	var der []byte
	if k, ok := ek.(*rsa.PublicKey); ok && req.Family == proto.FamilyEK12 {
		der, err = ekcert.Issue12(ca, caCert, k, info, notBefore, ekcert.NoExpiry)
	} else {
		der, err = ekcert.Issue(ca, caCert, ek, info, notBefore, ekcert.NoExpiry)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proto.ErrBadRequest, err)
	}
	m.mu.Lock()
	m.stats.EKCerts++
	m.mu.Unlock()
	m.logf("manager: vTPM %x (group %d): EK certificate issued (%T)", uuid, rec.Group, ek)
	return der, nil
}

var _ proto.Certifier = (*Manager)(nil)
