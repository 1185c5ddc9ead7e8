package mgmt

import (
	"bytes"
	"crypto"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// GroupAK is GROUP_AK's answer: a group's attestation key in the
// hardware TPM and the hardware TPM's endorsement key.
type GroupAK struct {
	// Family is the hardware's: deepquote.HW20 or deepquote.HW12.
	Family uint8
	// AKPublic and EKPublic are marshalled TPMT_PUBLICs on TPM 2.0, and
	// TPM_PUBKEYs (TPM 1.2 Part 2, 10.5) on TPM 1.2; AK and EK their
	// keys (RSA-2048 on TPM 1.2); AKName the AK's name, which
	// TPM2_MakeCredential takes (TPM 2.0 only).
	AKPublic, EKPublic []byte
	AK, EK             crypto.PublicKey
	AKName             []byte
	// EKCert is the hardware manufacturer's EK certificate (DER), nil if
	// the TPM has none (always nil on TPM 1.2 for now).
	EKCert []byte
	// IdentityBinding (TPM 1.2 only) is TPM_MakeIdentity's signature by
	// the identity key over TPM_IDENTITY_CONTENTS with label
	// hwtpm.GroupLabel12(Group); DecodeGroupAK has checked it.
	IdentityBinding []byte
	Group           [16]byte
}

// DecodeGroupAK decodes GROUP_AK's answer (proto.GroupAK): u8 family,
// then on TPM 2.0 u16 n ‖ AK public ‖ u16 m ‖ EK public ‖ u16 k ‖ EK
// certificate, and on TPM 1.2 the same three fields (TPM_PUBKEYs) ‖ u16
// ‖ identityBinding ‖ group UUID.
func DecodeGroupAK(p []byte) (*GroupAK, error) {
	r := &body{what: "GROUP_AK", b: p}
	fam, err := r.uint(1, "family")
	if err != nil {
		return nil, err
	}
	names := []string{"attestation key", "endorsement key", "EK certificate"}
	switch fam {
	case deepquote.HW20:
	case deepquote.HW12:
		names = append(names, "identity binding")
	default:
		return nil, fmt.Errorf("GROUP_AK: hardware family %d", fam)
	}
	f := make([][]byte, len(names))
	for i, name := range names {
		n, err := r.uint(2, name+" length")
		if err != nil {
			return nil, err
		}
		if f[i], err = r.take(int(n), name); err != nil {
			return nil, err
		}
	}
	g := &GroupAK{Family: uint8(fam), AKPublic: bytes.Clone(f[0]), EKPublic: bytes.Clone(f[1])}
	if len(f[2]) > 0 {
		g.EKCert = bytes.Clone(f[2])
	}
	if fam == deepquote.HW12 {
		u, err := r.take(16, "group UUID")
		if err != nil {
			return nil, err
		}
		copy(g.Group[:], u)
		if err := r.end(); err != nil {
			return nil, err
		}
		return decodeGroupAK12(g, f[3])
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		b   []byte
		key *crypto.PublicKey
		nm  *[]byte
	}{{g.AKPublic, &g.AK, &g.AKName}, {g.EKPublic, &g.EK, nil}} {
		pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](k.b)
		if err != nil || !bytes.Equal(tpm2.Marshal(pub), k.b) {
			return nil, fmt.Errorf("GROUP_AK: a public area that does not decode")
		}
		if *k.key, err = tpm2.Pub(*pub); err != nil {
			return nil, fmt.Errorf("GROUP_AK: %w", err)
		}
		if k.nm != nil {
			n, err := tpm2.ObjectName(pub)
			if err != nil {
				return nil, fmt.Errorf("GROUP_AK: %w", err)
			}
			*k.nm = n.Buffer
		}
	}
	return g, nil
}

// decodeGroupAK12 reads the TPM 1.2 keys and checks the identity
// binding against the identity key and the group's label.
func decodeGroupAK12(g *GroupAK, binding []byte) (*GroupAK, error) {
	ak, err := hwtpm.ParsePubKey12(g.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("GROUP_AK: identity key: %w", err)
	}
	ek, err := hwtpm.ParsePubKey12(g.EKPublic)
	if err != nil {
		return nil, fmt.Errorf("GROUP_AK: EK: %w", err)
	}
	if err := hwtpm.CheckIdentityBinding12(g.AKPublic, hwtpm.GroupLabel12(g.Group), binding); err != nil {
		return nil, fmt.Errorf("GROUP_AK: %w", err)
	}
	g.AK, g.EK, g.IdentityBinding = ak, ek, bytes.Clone(binding)
	return g, nil
}

// GroupAK returns group id's attestation key and the hardware EK.
func (c Client) GroupAK(id uint32) (*GroupAK, error) {
	p, err := c.call(proto.OrdGroupAK, u32(id))
	if err != nil {
		return nil, err
	}
	return DecodeGroupAK(p)
}

// GroupActivate has the hardware TPM undo a TPM2_MakeCredential made
// for group id's attestation key against its EK, returning the
// credential: the proof that the key is in that TPM. On TPM 1.2
// credentialBlob is hwtpm.ActivationBlob12's, secret is nil, and the
// answer is the TPM_SYMMETRIC_KEY.
func (c Client) GroupActivate(id uint32, credentialBlob, secret []byte) ([]byte, error) {
	p := proto.EncodeGroupActivate(proto.GroupActivate{Group: id, CredentialBlob: credentialBlob, Secret: secret})
	return c.call(proto.OrdGroupActivate, p)
}
