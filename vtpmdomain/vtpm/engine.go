package vtpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
)

// engine is what the server uses of a TPM engine: *tpm2.TPM as it is,
// *tpm12.TPM through tpm12Engine.
type engine interface {
	Process(cmd []byte, locality uint8) []byte
	NVChanged() bool
	WritesNV(code uint32) bool
	Save() ([]byte, error)
	SaveAtStop() ([]byte, error)
	RestorePersistent(blob []byte) error
	Reset()
	InitPCR(i int, sha1Value [20]byte) error
}

var (
	_ engine = (*tpm2.TPM)(nil)
	_ engine = tpm12Engine{}
)

// tpm12Engine adapts the TPM 1.2 engine, which keeps nothing lazily
// (every durable change, TPM_SaveState's included, raises NVChanged), so
// the blob stored at a stop is an ordinary Save.
type tpm12Engine struct{ *tpm12.TPM }

func (e tpm12Engine) SaveAtStop() ([]byte, error) { return e.Save() }

// Families, the values of tpm=.
const (
	Family20 = "2.0"
	Family12 = "1.2"
)

// family is what differs between the families on the server's side:
// the Startup commands it sends and the codes of the answers it gives
// itself.
type family struct {
	name string
	// startupName names the Startup command in the log.
	startupName string
	clear       uint16 // Startup(CLEAR)'s parameter
	state       uint16 // Startup(STATE)'s parameter
	// rcLocality answers a command at a locality outside locality=;
	// rcRate one refused by the save budget or the rate-limited manager
	// before it had an effect; rcNVUnavailable one whose change could
	// not be stored.
	rcLocality, rcRate, rcNVUnavailable uint32
	// The codes' names, for the log.
	localityName, rateName, nvUnavailableName string
	// quote is the family's deep quote command (deepquote.go).
	quote *quoteFamily
}

var (
	family20 = &family{name: Family20, startupName: "TPM2_Startup", clear: 0x0000, state: 0x0001,
		rcLocality: rcLocality, rcRate: rcNVRate, rcNVUnavailable: rcNVUnavailable,
		localityName: "TPM_RC_LOCALITY", rateName: "TPM_RC_NV_RATE", nvUnavailableName: "TPM_RC_NV_UNAVAILABLE", quote: quote20}
	// TPM 1.2 (Part 2 §16): TPM_BAD_LOCALITY; TPM_RETRY, "the command
	// could be resubmitted at a later time"; TPM_FAIL.
	family12 = &family{name: Family12, startupName: "TPM_Startup", clear: 0x0001, state: 0x0002,
		rcLocality: 0x3D, rcRate: 0x800, rcNVUnavailable: 0x09,
		localityName: "TPM_BAD_LOCALITY", rateName: "TPM_RETRY", nvUnavailableName: "TPM_FAIL", quote: quote12}
)

func familyOf(name string) *family {
	if name == Family12 {
		return family12
	}
	return family20
}

// newEngine makes the family's engine from state (nil: a new TPM). A state
// of the other family is refused, never converted or replaced.
func (f *family) newEngine(state []byte, now func() time.Time) (engine, error) {
	var e engine
	var err error
	if f == family12 {
		var t *tpm12.TPM
		if t, err = tpm12.New(tpm12.Config{State: state}); err == nil {
			e = tpm12Engine{t}
		}
	} else {
		e, err = tpm2.New(tpm2.Config{State: state, Now: now})
	}
	if err == nil {
		return e, nil
	}
	other := ""
	if errors.Is(err, tpm12.ErrOtherFamily) {
		other = Family20
	} else if f == family20 {
		if _, e12 := tpm12.New(tpm12.Config{State: state}); e12 == nil {
			other = Family12
		}
	}
	if other != "" {
		return nil, fmt.Errorf("%w: the saved state is a TPM %s, this vTPM is started as a TPM %s (tpm=%s); it is neither converted nor replaced: start it with tpm=%s",
			ErrOtherFamily, other, f.name, f.name, other)
	}
	return nil, err
}

// ErrOtherFamily is wrapped by NewServer's error for a saved state of
// the family tpm= does not choose.
var ErrOtherFamily = errors.New("wrong TPM family")

// startupCommand is the family's Startup(su).
func (f *family) startupCommand(su uint16) []byte {
	cmd := make([]byte, 12)
	if f == family12 {
		binary.BigEndian.PutUint16(cmd[0:], 0x00C1) // TPM_TAG_RQU_COMMAND
		binary.BigEndian.PutUint32(cmd[6:], 0x99)   // TPM_ORD_Startup
	} else {
		binary.BigEndian.PutUint16(cmd[0:], 0x8001) // TPM_ST_NO_SESSIONS
		binary.BigEndian.PutUint32(cmd[6:], 0x144)  // TPM_CC_Startup
	}
	binary.BigEndian.PutUint32(cmd[2:], 12)
	binary.BigEndian.PutUint16(cmd[10:], su)
	return cmd
}

// response is a 10-byte response of the family carrying rc.
func (f *family) response(rc uint32) []byte {
	rsp := make([]byte, 10)
	if f == family12 {
		binary.BigEndian.PutUint16(rsp, 0x00C4) // TPM_TAG_RSP_COMMAND
	} else {
		binary.BigEndian.PutUint16(rsp, 0x8001) // TPM_ST_NO_SESSIONS
	}
	binary.BigEndian.PutUint32(rsp[2:], 10)
	binary.BigEndian.PutUint32(rsp[6:], rc)
	return rsp
}
