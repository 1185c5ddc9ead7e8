package mgmt

import (
	"bytes"
	"crypto"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// GroupAK is GROUP_AK's answer: a group's attestation key in the
// hardware TPM and the hardware TPM's endorsement key.
type GroupAK struct {
	// AKPublic and EKPublic are marshalled TPMT_PUBLICs; AK and EK their
	// keys; AKName the AK's name, which TPM2_MakeCredential takes.
	AKPublic, EKPublic []byte
	AK, EK             crypto.PublicKey
	AKName             []byte
	// EKCert is the hardware manufacturer's EK certificate (DER), nil if
	// the TPM has none.
	EKCert []byte
}

// DecodeGroupAK decodes u16 n ‖ AK public ‖ u16 m ‖ EK public ‖ u16 k ‖ EK
// certificate.
func DecodeGroupAK(p []byte) (*GroupAK, error) {
	r := &body{what: "GROUP_AK", b: p}
	var f [3][]byte
	for i, name := range []string{"attestation key", "endorsement key", "EK certificate"} {
		n, err := r.uint(2, name+" length")
		if err != nil {
			return nil, err
		}
		if f[i], err = r.take(int(n), name); err != nil {
			return nil, err
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	g := &GroupAK{AKPublic: bytes.Clone(f[0]), EKPublic: bytes.Clone(f[1])}
	if len(f[2]) > 0 {
		g.EKCert = bytes.Clone(f[2])
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
// credential: the proof that the key is in that TPM.
func (c Client) GroupActivate(id uint32, credentialBlob, secret []byte) ([]byte, error) {
	p := proto.EncodeGroupActivate(proto.GroupActivate{Group: id, CredentialBlob: credentialBlob, Secret: secret})
	return c.call(proto.OrdGroupActivate, p)
}
