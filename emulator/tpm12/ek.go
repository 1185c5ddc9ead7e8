package tpm12

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"fmt"
)

// ekPublic is the TPM_PUBKEY of the endorsement key (Part 1 §5.8: an
// RSA-2048 storage key with OAEP encryption and no signature scheme).
func (t *TPM) ekPublic() (*pubKey, error) {
	k, err := t.ek()
	if err != nil {
		return nil, err
	}
	w := &writer{}
	(&rsaKeyParms{KeyLength: ekBits, NumPrimes: ekNumPrimes}).marshal(w)
	return &pubKey{
		AlgorithmParms: keyParms{AlgorithmID: algRSA, EncScheme: esRSAESOAEPSHA1MGF1, SigScheme: ssNone, Parms: w.b},
		Key:            k.N.FillBytes(make([]byte, ekBits/8)),
	}, nil
}

// ek returns the endorsement key, parsing it once.
func (t *TPM) ek() (*rsa.PrivateKey, error) {
	if t.ekKey != nil {
		return t.ekKey, nil
	}
	if len(t.ps.EK) == 0 {
		return nil, rcE(rcNoEndorsement, "no endorsement key")
	}
	k, err := x509.ParsePKCS1PrivateKey(t.ps.EK)
	if err != nil {
		return nil, fmt.Errorf("endorsement key: %w", err)
	}
	t.ekKey = k
	return k, nil
}

type readPubekIn struct{ AntiReplay digest }

func (p *readPubekIn) unmarshal(r *reader) { p.AntiReplay = r.digest() }

type readPubekOut struct {
	PubEndorsementKey pubKey
	Checksum          digest
}

func (o *readPubekOut) marshal(w *writer) {
	o.PubEndorsementKey.marshal(w)
	w.bytes(o.Checksum[:])
}

// readPubek is TPM_ReadPubek, Part 3 §14.4: the EK's public part while
// readPubek is set (until an owner is installed), with checksum =
// SHA-1(pubEndorsementKey || antiReplay).
func (t *TPM) readPubek(_ *call, in *readPubekIn) (*readPubekOut, error) {
	if !t.ps.Flags.ReadPubek {
		return nil, rcE(rcDisabledCmd, "readPubek is FALSE")
	}
	pub, err := t.ekPublic()
	if err != nil {
		return nil, err
	}
	out := &readPubekOut{PubEndorsementKey: *pub}
	w := &writer{}
	pub.marshal(w)
	w.bytes(in.AntiReplay[:])
	out.Checksum = sha1.Sum(w.b)
	return out, nil
}
