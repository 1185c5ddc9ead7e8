//go:build !(tamago && amd64)

package tpmtis

import "errors"

// Open is only available on GOOS=tamago GOARCH=amd64, where the register
// page is reachable by its physical address. Elsewhere use New with a
// Registers implementation.
func Open(cfg Config) (*TPM, error) {
	return nil, errors.New("tpmtis: memory-mapped access needs GOOS=tamago GOARCH=amd64; use New")
}
