package tpm2

import (
	"errors"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Engine-side command and response structures: declared here because
// go-tpm has none for the command, or has one whose concrete handle types
// its decoder cannot fill. They exist to decode commands and encode
// responses, never to send them, so their Execute methods fail.

// errEngineSide is what the Execute methods of these structures return.
var errEngineSide = errors.New("tpm2: engine-side command structure")

// emptyResponse is the response of commands that return no parameters.
type emptyResponse struct{}

// Random numbers, Part 3 §16.

type stirRandomCmd struct {
	InData gt.TPM2BData
}

func (stirRandomCmd) Command() gt.TPMCC { return gt.TPMCCStirRandom }
func (stirRandomCmd) Execute(transport.TPM, ...gt.Session) (*emptyResponse, error) {
	return nil, errEngineSide
}

// (startup.go structures)

// (policy.go, import.go structures)

// (create.go structures)

// (secret.go, hash.go structures)

// (attest.go, sign.go, pcr.go structures)

// (nv.go, admin.go structures)
