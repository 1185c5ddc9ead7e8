package main

import (
	"errors"
	"fmt"

	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
)

// engine is what the daemon uses of a TPM engine. *tpm2.TPM is one as it
// is; *tpm12.TPM through tpm12Engine.
type engine interface {
	// Process runs one command received at locality.
	Process(cmd []byte, locality uint8) []byte
	// NVChanged says whether durable state changed since the last call.
	NVChanged() bool
	// Save returns the state blob to store after a change.
	Save() ([]byte, error)
	// SaveAtStop returns the blob to store as the TPM stops.
	SaveAtStop() ([]byte, error)
	// Reset models _TPM_Init.
	Reset()
}

var (
	_ engine = (*tpm2.TPM)(nil)
	_ engine = tpm12Engine{}
)

// tpm12Engine adapts the TPM 1.2 engine. It keeps nothing lazily (every
// change of durable state, and what TPM_SaveState preserves, raises
// NVChanged), so the blob stored at a stop is an ordinary Save.
type tpm12Engine struct{ *tpm12.TPM }

func (e tpm12Engine) SaveAtStop() ([]byte, error) { return e.Save() }

// family is the TPM family the daemon serves (-family).
type family string

const (
	family20 family = "2.0"
	family12 family = "1.2"
)

func parseFamily(s string) (family, error) {
	switch family(s) {
	case family20, family12:
		return family(s), nil
	}
	return "", fmt.Errorf("-family %q: want 2.0 or 1.2", s)
}

func (f family) other() family {
	if f == family12 {
		return family20
	}
	return family12
}

// stateFile is the file in the state directory that holds the family's
// blob; the families use different names so that a directory shows what
// it holds.
func (f family) stateFile() string {
	if f == family12 {
		return "tpm12-state.bin"
	}
	return "tpm2-state.bin"
}

// newEngine makes the family's engine from blob, nil for a new TPM.
func (f family) newEngine(blob []byte) (engine, error) {
	if f == family12 {
		t, err := tpm12.New(tpm12.Config{State: blob})
		if err != nil {
			return nil, err
		}
		return tpm12Engine{t}, nil
	}
	return tpm2.New(tpm2.Config{State: blob})
}

// errOtherFamily is returned for a state of the family the daemon does
// not serve; the state is left as it is.
var errOtherFamily = errors.New("wrong TPM family")

// checkBlobFamily tells apart a blob of the other family from a damaged
// one after f's engine refused it: the engines recognize each other's
// blobs by their magic.
func checkBlobFamily(f family, blob []byte, err error) error {
	if errors.Is(err, tpm12.ErrOtherFamily) {
		return fmt.Errorf("%w: it holds a TPM 2.0 state, this daemon serves TPM 1.2 (-family 1.2)", errOtherFamily)
	}
	if f == family20 {
		if _, e := tpm12.New(tpm12.Config{State: blob}); e == nil {
			return fmt.Errorf("%w: it holds a TPM 1.2 state, this daemon serves TPM 2.0 (-family 2.0)", errOtherFamily)
		}
	}
	return err
}

// startupCommand is the family's Startup(CLEAR), sent at power-on with
// -startup.
func (f family) startupCommand() []byte {
	if f == family12 {
		// TPM_Startup(TPM_ST_CLEAR): tag TPM_TAG_RQU_COMMAND, ordinal 0x99.
		return []byte{0x00, 0xC1, 0, 0, 0, 0x0C, 0, 0, 0, 0x99, 0, 1}
	}
	return []byte{0x80, 0x01, 0, 0, 0, 0x0C, 0, 0, 0x01, 0x44, 0, 0}
}
