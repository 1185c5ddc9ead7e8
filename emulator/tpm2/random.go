package tpm2

import (
	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// GetRandom and StirRandom, Part 3 §16.

type stirRandomCmd struct {
	InData gt.TPM2BData
}

func (stirRandomCmd) Command() gt.TPMCC { return gt.TPMCCStirRandom }
func (stirRandomCmd) Execute(transport.TPM, ...gt.Session) (*noResponse, error) {
	return nil, errEngineSide
}

func init() {
	register(func(t *TPM, c *call, cmd *gt.GetRandom) (*reply, error) {
		n := int(cmd.BytesRequested)
		// At most one digest's worth per call (Part 3 §16.1).
		if n > maxDigestBytes {
			n = maxDigestBytes
		}
		return &reply{params: sized(t.randBytes(n))}, nil
	})
	register(func(t *TPM, c *call, cmd *stirRandomCmd) (*reply, error) {
		if len(cmd.InData.Buffer) > 128 {
			return nil, rcP(rcSize, 1, "inData larger than 128 octets")
		}
		// The random source is the platform CSPRNG, which takes no
		// caller input; accepting the data keeps clients working.
		return nil, nil
	})
}
