package tpm12

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"fmt"
	"slices"
)

// Protocol IDs of TakeOwnership and ChangeAuthOwner, Part 2 §4.12.
const (
	pidADCP  uint16 = 0x0004 // TPM_PID_ADCP
	pidOwner uint16 = 0x0005 // TPM_PID_OWNER
)

// srk is the storage root key (TPM_PERMANENT_DATA.srk): the private key,
// its public TPM_KEY or TPM_KEY12 as TakeOwnership returned it (encData
// empty), and its usage authData.
type srk struct {
	Key  []byte // PKCS #1 DER
	Pub  []byte
	Auth digest
}

// srkKey returns the SRK's private key and public structure, parsing
// them once.
func (t *TPM) srkKey() (*rsa.PrivateKey, *tpmKey, error) {
	if t.ps.SRK == nil {
		return nil, nil, rcE(rcNoSRK, "no SRK")
	}
	if t.srkPriv == nil {
		k, err := x509.ParsePKCS1PrivateKey(t.ps.SRK.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("SRK: %w", err)
		}
		var pub tpmKey
		r := &reader{b: t.ps.SRK.Pub}
		pub.unmarshal(r)
		if r.short || r.err != nil {
			return nil, nil, fmt.Errorf("SRK public part")
		}
		t.srkPriv, t.srkPub = k, &pub
	}
	return t.srkPriv, t.srkPub, nil
}

type takeOwnershipIn struct {
	ProtocolID   uint16
	EncOwnerAuth []byte
	EncSrkAuth   []byte
	SrkParams    tpmKey
}

func (p *takeOwnershipIn) unmarshal(r *reader) {
	p.ProtocolID = r.u16()
	p.EncOwnerAuth = r.sized(bufferMax)
	p.EncSrkAuth = r.sized(bufferMax)
	p.SrkParams.unmarshal(r)
}

// takeOwnership is TPM_TakeOwnership, Part 3 §6.1: the owner and SRK
// secrets arrive OAEP-encrypted to the EK; the TPM makes an RSA SRK of
// the requested size, a fresh tpmProof, and stops answering ReadPubek.
// The command is authorized by an OIAP session keyed by the new owner
// secret. The response is the SRK's TPM_KEY (or TPM_KEY12, as sent)
// without encData.
func (t *TPM) takeOwnership(c *call, in *takeOwnershipIn) (*tpmKey, error) {
	if t.ps.Owned {
		return nil, rcE(rcOwnerSet, "owner installed")
	}
	if !t.ps.Flags.Ownership {
		return nil, rcE(rcInstallDisabled, "ownership flag clear")
	}
	ek, err := t.ek()
	if err != nil {
		return nil, err
	}
	if s := t.sessions[c.auth[0].handle]; s != nil && s.pid != pidOIAP {
		return nil, rcE(rcBadMode, "TakeOwnership needs an OIAP session")
	}
	if in.ProtocolID != pidOwner {
		return nil, rcE(rcBadParameter, "protocolID %#x", in.ProtocolID)
	}
	ownerAuth, err := t.decryptOAEP(ek, in.EncOwnerAuth)
	if err != nil {
		return nil, err
	}
	if len(ownerAuth) != digestSize {
		return nil, rcE(rcBadKeyProperty, "owner secret of %d bytes", len(ownerAuth))
	}
	if err := t.authorize(c, 0, digest(ownerAuth), etOwner, 0); err != nil {
		return nil, err
	}
	p := &in.SrkParams
	if p.KeyUsage != keyUsageStorage || p.KeyFlags&keyFlagMigratable != 0 {
		return nil, rcE(rcInvalidKeyUsage, "SRK usage %#x flags %#x", p.KeyUsage, p.KeyFlags)
	}
	if p.AlgorithmParms.AlgorithmID != algRSA || p.AlgorithmParms.EncScheme != esRSAESOAEPSHA1MGF1 ||
		p.AlgorithmParms.SigScheme != ssNone {
		return nil, rcE(rcBadKeyProperty, "SRK algorithm parameters")
	}
	rp, err := p.rsaParms()
	if err != nil {
		return nil, err
	}
	if rp.KeyLength < 2048 || len(rp.Exponent) != 0 {
		return nil, rcE(rcBadKeyProperty, "SRK of %d bits, exponent %x", rp.KeyLength, rp.Exponent)
	}
	if rp.KeyLength > 2048 || rp.NumPrimes != 2 {
		// libtpms makes RSA keys of 2048 bits at most, with two primes.
		return nil, rcE(rcBadKeyProperty, "SRK of %d bits, %d primes", rp.KeyLength, rp.NumPrimes)
	}
	key, err := rsa.GenerateKey(t.rand, int(rp.KeyLength))
	if err != nil {
		return nil, err
	}
	srkAuth, err := t.decryptOAEP(ek, in.EncSrkAuth)
	if err != nil {
		return nil, err
	}
	if len(srkAuth) != digestSize {
		return nil, rcE(rcBadKeyProperty, "SRK secret of %d bytes", len(srkAuth))
	}
	pub := *p
	pub.PubKey = key.N.FillBytes(make([]byte, rp.KeyLength/8))
	pub.EncData = nil
	w := &writer{}
	pub.marshal(w)
	var proof digest
	t.randBytes(proof[:])
	t.ps.SRK = &srk{Key: x509.MarshalPKCS1PrivateKey(key), Pub: w.b, Auth: digest(srkAuth)}
	t.srkPriv, t.srkPub = key, &pub
	t.ps.TPMProof = proof
	t.ps.OwnerAuth = digest(ownerAuth)
	t.ps.Owned = true
	t.ps.Flags.ReadPubek = false
	t.nvDirty = true
	return &pub, nil
}

// ownerClear is TPM_OwnerClear, Part 3 §6.2, authorized by the owner.
func (t *TPM) ownerClear(c *call, _ *none) (*none, error) {
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	if t.ps.Flags.DisableOwnerClear {
		return nil, rcE(rcClearDisabled, "disableOwnerClear")
	}
	t.clearOwner()
	// The session ends with the owner it authorized (§6.2 action 14).
	c.auth[0].cont = false
	return &none{}, nil
}

// clearOwner is the common part of OwnerClear and ForceClear (Part 3
// §6.2 actions 3-14): the owner, the SRK, tpmProof, every session and
// every loaded key are gone, and the permanent flags the specification names take their
// defaults as libtpms sets them: disabled and deactivated, so that an
// owner can be taken again only after physical presence re-enables the
// TPM, and allowMaintenance clear, libtpms having no maintenance
// commands.
func (t *TPM) clearOwner() {
	t.ps.Owned, t.ps.OwnerAuth, t.ps.SRK, t.ps.TPMProof = false, digest{}, nil, digest{}
	t.srkPriv, t.srkPub = nil, nil
	f := &t.ps.Flags
	f.Disable, f.Deactivated, f.ReadPubek, f.DisableOwnerClear = true, true, true, false
	f.DisableFullDALogicInfo, f.AllowMaintenance, f.ReadSRKPub = false, false, false
	f.Ownership, f.Operator, f.MaintenanceDone = true, false, false
	// Part 3 §6.2 action 12: the owner's indices go, unless the D bit
	// marks them the manufacturer's.
	t.ps.NV = slices.DeleteFunc(t.ps.NV, func(a *nvArea) bool {
		return a.Index&nvIndexDBit == 0 && a.Attributes&(nvPerOwnerRead|nvPerOwnerWrite) != 0
	})
	t.ps.NoOwnerNVWrite = 0
	// §6.2 action 11: the counters are released; their counts stay.
	for i := range t.ps.Counters {
		t.ps.Counters[i].Valid, t.ps.Counters[i].Auth, t.ps.Counters[i].Label = false, digest{}, [4]byte{}
	}
	clear(t.sessions)
	clear(t.keys)
	t.nvDirty = true
}

// forceClear is TPM_ForceClear, Part 3 §6.3, on physical presence
// (pp.go).
func (t *TPM) forceClear(_ *call, _ *none) (*none, error) {
	if err := t.needPresence(); err != nil {
		return nil, err
	}
	if t.stclear.DisableForceClear {
		return nil, rcE(rcClearDisabled, "disableForceClear")
	}
	t.clearOwner()
	return &none{}, nil
}

// disableOwnerClear is TPM_DisableOwnerClear, Part 3 §6.4: from now on
// only ForceClear removes the owner.
func (t *TPM) disableOwnerClear(c *call, _ *none) (*none, error) {
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	if !t.ps.Flags.DisableOwnerClear {
		t.ps.Flags.DisableOwnerClear = true
		t.nvDirty = true
	}
	return &none{}, nil
}

type boolIn struct{ V bool }

func (b *boolIn) unmarshal(r *reader) { b.V = r.bool() }

// ownerSetDisable is TPM_OwnerSetDisable, Part 3 §5.2: the owner sets
// or clears the disable flag.
func (t *TPM) ownerSetDisable(c *call, in *boolIn) (*none, error) {
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	if t.ps.Flags.Disable != in.V {
		t.ps.Flags.Disable = in.V
		t.nvDirty = true
	}
	return &none{}, nil
}

type changeAuthOwnerIn struct {
	ProtocolID uint16
	NewAuth    digest
	EntityType uint16
}

func (p *changeAuthOwnerIn) unmarshal(r *reader) {
	p.ProtocolID = r.u16()
	p.NewAuth = r.digest()
	p.EntityType = r.u16()
}

// changeAuthOwner is TPM_ChangeAuthOwner, Part 3 §17.2: under an OSAP
// session of the owner, the owner's or the SRK's authData becomes
// newAuth, XOR-decrypted with SHA-1(sharedSecret || nonceEven) (the
// ADIP, Part 1 §13.8). The session ends, and with it every OSAP session
// of the owner.
func (t *TPM) changeAuthOwner(c *call, in *changeAuthOwnerIn) (*none, error) {
	a := &c.auth[0]
	if s := t.sessions[a.handle]; s != nil && s.pid != pidOSAP {
		return nil, rcE(rcBadMode, "ChangeAuthOwner needs an OSAP session")
	}
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	if in.ProtocolID != pidADCP {
		return nil, rcE(rcBadParameter, "protocolID %#x", in.ProtocolID)
	}
	var target *digest
	switch in.EntityType {
	case uint16(etOwner):
		target = &t.ps.OwnerAuth
	case uint16(etSRK):
		if t.ps.SRK == nil {
			return nil, rcE(rcNoSRK, "no SRK")
		}
		target = &t.ps.SRK.Auth
	default:
		return nil, rcE(rcWrongEntityType, "entity type %#x", in.EntityType)
	}
	*target = adipDecrypt(a.sess, in.NewAuth)
	a.cont = false
	for h, s := range t.sessions {
		if s.pid == pidOSAP && s.entityType == etOwner {
			delete(t.sessions, h)
		}
	}
	t.nvDirty = true
	return &none{}, nil
}

// adipDecrypt undoes the ADIP of Part 1 §13.8 on an encrypted authData
// with the OSAP session's nonceEven (the one the command was authorized
// with).
func adipDecrypt(s *session, enc digest) digest { return adipDecryptWith(s, s.nonceEven, enc) }

// adipDecryptWith undoes the session's ADIP keyed by nonce: XOR with
// SHA-1(sharedSecret || nonce), or AES-128 in CTR mode keyed by the
// first 16 bytes of the shared secret from the counter of the first 16
// bytes of nonce (TPM_ET_AES128_CTR). A second secret of a command (the
// migrationAuth of TPM_CreateWrapKey) uses nonceOdd (Part 3 §10.4).
func adipDecryptWith(s *session, nonce, enc digest) digest {
	if s.adip == etAES128 {
		b, _ := aes.NewCipher(s.sharedSecret[:16])
		cipher.NewCTR(b, nonce[:16]).XORKeyStream(enc[:], enc[:])
		return enc
	}
	pad := sha1.Sum(append(s.sharedSecret[:], nonce[:]...))
	for i := range enc {
		enc[i] ^= pad[i]
	}
	return enc
}

type handleIn struct{ Handle uint32 }

func (h *handleIn) unmarshal(r *reader) { h.Handle = r.u32() }

// ownerReadInternalPub is TPM_OwnerReadInternalPub (Part 3): the owner
// reads the public part of the EK or the SRK.
func (t *TPM) ownerReadInternalPub(c *call, in *handleIn) (*pubKey, error) {
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	switch in.Handle {
	case khEK:
		return t.ekPublic()
	case khSRK:
		_, pub, err := t.srkKey()
		if err != nil {
			return nil, err
		}
		return pub.pub(), nil
	}
	return nil, rcE(rcBadParameter, "key handle %#x", in.Handle)
}
