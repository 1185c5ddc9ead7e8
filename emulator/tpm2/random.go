package tpm2

import (
	gt "github.com/google/go-tpm/tpm2"
)

// GetRandom and StirRandom, Part 3 §16.

// getRandom is TPM2_GetRandom, Part 3 §16.1.
func (t *TPM) getRandom(c *call, cmd *gt.GetRandom) (*gt.GetRandomResponse, error) {
	n := int(cmd.BytesRequested)
	// At most one digest's worth per call (Part 3 §16.1).
	if n > maxDigestBytes {
		n = maxDigestBytes
	}
	// The response and its bytes live in the TPM until they are encoded,
	// before Process returns: GetRandom is a hot command (a guest's
	// hwrng reads through it).
	out := &t.getRandomOut
	out.r = gt.GetRandomResponse{RandomBytes: gt.TPM2BDigest{Buffer: t.fillRandom(out.buf[:n])}}
	return &out.r, nil
}

// getRandomResponse is GetRandom's response kept in the TPM.
type getRandomResponse struct {
	r   gt.GetRandomResponse
	buf [maxDigestBytes]byte
}

// stirRandom is TPM2_StirRandom, Part 3 §16.2.
func (t *TPM) stirRandom(c *call, cmd *stirRandomCmd) (*emptyResponse, error) {
	if len(cmd.InData.Buffer) > 128 {
		return nil, rcP(rcSize, 1, "inData larger than 128 octets")
	}
	// The random source is the platform CSPRNG, which takes no caller
	// input; accepting the data keeps clients working.
	return nil, nil
}
