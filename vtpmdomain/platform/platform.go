// Package platform defines the platform commands: vendor-specific TPM
// commands (TPM 2.0 Part 2 §6.5.2, TPMA_CC's V bit: command codes with bit
// 29 set belong to the vendor) that the control domain sends a vTPM domain
// through an ordinary vtpm device to do what a platform does to its TPM
// outside the command stream. The one defined today is PlatformReset:
// _TPM_Init, the signal a motherboard gives its TPM when the machine
// resets (TCG PC Client PTP §7), which an HVM guest's reboot needs and
// which a guest could never send through its own device.
//
// A vTPM domain performs a platform command only for a frontend in domain
// 0; any other frontend gets TPM_RC_COMMAND_CODE, as for every command code
// the TPM does not implement. docs/platform-commands.md describes the wire
// format and the rule.
package platform

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command codes of the project's vendor range 0x2000_5800–0x2000_58ff
// (0x58 is 'X'). The rest of the range is reserved for the project's
// later vendor commands.
const (
	// CCPlatformReset: _TPM_Init. No parameters; the response carries
	// only a response code. Afterwards the TPM expects TPM2_Startup.
	CCPlatformReset uint32 = 0x20005801
)

// Range is the project's vendor command-code range.
const (
	RangeFirst uint32 = 0x20005800
	RangeLast  uint32 = 0x200058ff
)

// Control is the one domain whose frontends may send platform commands.
const Control uint16 = 0

const (
	tagNoSessions = 0x8001 // TPM_ST_NO_SESSIONS
	headerSize    = 10
)

// Marshal returns the command for code cc (no parameters).
func Marshal(cc uint32) []byte {
	b := make([]byte, headerSize)
	binary.BigEndian.PutUint16(b[0:], tagNoSessions)
	binary.BigEndian.PutUint32(b[2:], headerSize)
	binary.BigEndian.PutUint32(b[6:], cc)
	return b
}

// Code returns cmd's command code if cmd is a well-formed command in the
// project's vendor range, and false otherwise (an ordinary TPM command, or
// one the engine will reject on its own).
func Code(cmd []byte) (uint32, bool) {
	if len(cmd) < headerSize || binary.BigEndian.Uint16(cmd) != tagNoSessions ||
		binary.BigEndian.Uint32(cmd[2:]) != uint32(len(cmd)) {
		return 0, false
	}
	cc := binary.BigEndian.Uint32(cmd[6:])
	return cc, cc >= RangeFirst && cc <= RangeLast
}

// Response is the 10-byte TPM 2.0 response carrying rc.
func Response(rc uint32) []byte {
	b := make([]byte, headerSize)
	binary.BigEndian.PutUint16(b[0:], tagNoSessions)
	binary.BigEndian.PutUint32(b[2:], headerSize)
	binary.BigEndian.PutUint32(b[6:], rc)
	return b
}

// Response codes used here (TPM 2.0 Part 2 §6.6).
const (
	RCSuccess     uint32 = 0
	RCCommandCode uint32 = 0x143 // TPM_RC_COMMAND_CODE
	RCSize        uint32 = 0x095 // TPM_RC_SIZE: parameters given to a command that takes none
)

// ErrRefused is wrapped by Check when the vTPM answered with an error.
var ErrRefused = errors.New("platform command refused")

// Check reads the response to a platform command.
func Check(cc uint32, rsp []byte) error {
	if len(rsp) < headerSize || binary.BigEndian.Uint32(rsp[2:]) != uint32(len(rsp)) {
		return fmt.Errorf("platform command %#x: malformed response of %d bytes", cc, len(rsp))
	}
	switch rc := binary.BigEndian.Uint32(rsp[6:]); rc {
	case RCSuccess:
		return nil
	case RCCommandCode:
		return fmt.Errorf("platform command %#x: %w: TPM_RC_COMMAND_CODE (a vTPM domain that predates it, or this domain is not domain %d)", cc, ErrRefused, Control)
	default:
		return fmt.Errorf("platform command %#x: %w: rc %#x", cc, ErrRefused, rc)
	}
}
