package tpm2

import "fmt"

// Response codes, TPM 2.0 Part 2 §6.6 (TPM_RC). Only the values the engine
// returns are named; the names follow the specification.
const (
	rcSuccess uint32 = 0x000
	rcBadTag  uint32 = 0x01E

	// Format-zero, version 1 (0x100 + n).
	rcInitialize      uint32 = 0x100
	rcFailure         uint32 = 0x101
	rcSequence        uint32 = 0x103
	rcDisabled        uint32 = 0x120
	rcExclusive       uint32 = 0x121
	rcAuthType        uint32 = 0x124
	rcAuthMissing     uint32 = 0x125
	rcPolicy          uint32 = 0x126
	rcPCR             uint32 = 0x127
	rcPCRChanged      uint32 = 0x128
	rcTooManyContexts uint32 = 0x12E
	rcAuthUnavailable uint32 = 0x12F
	rcReboot          uint32 = 0x130
	rcCommandSize     uint32 = 0x142
	rcCommandCode     uint32 = 0x143
	rcAuthSize        uint32 = 0x144
	rcAuthContext     uint32 = 0x145
	rcNVRange         uint32 = 0x146
	rcNVSize          uint32 = 0x147
	rcNVLocked        uint32 = 0x148
	rcNVAuthorization uint32 = 0x149
	rcNVUninitialized uint32 = 0x14A
	rcNVSpace         uint32 = 0x14B
	rcNVDefined       uint32 = 0x14C
	rcBadContext      uint32 = 0x150
	rcCpHash          uint32 = 0x151
	rcParent          uint32 = 0x152
	rcNoResult        uint32 = 0x154
	rcSensitive       uint32 = 0x155

	// Format-one (0x080 + n); combined with a parameter, handle or
	// session number by rcP, rcH and rcS.
	rcAsymmetric   uint32 = 0x081
	rcAttributes   uint32 = 0x082
	rcHash         uint32 = 0x083
	rcValue        uint32 = 0x084
	rcHierarchy    uint32 = 0x085
	rcKeySize      uint32 = 0x087
	rcMGF          uint32 = 0x088
	rcMode         uint32 = 0x089
	rcType         uint32 = 0x08A
	rcHandle       uint32 = 0x08B
	rcKDF          uint32 = 0x08C
	rcRange        uint32 = 0x08D
	rcAuthFail     uint32 = 0x08E
	rcNonce        uint32 = 0x08F
	rcPP           uint32 = 0x090
	rcScheme       uint32 = 0x092
	rcSize         uint32 = 0x095
	rcSymmetric    uint32 = 0x096
	rcTag          uint32 = 0x097
	rcSelector     uint32 = 0x098
	rcInsufficient uint32 = 0x09A
	rcSignature    uint32 = 0x09B
	rcKey          uint32 = 0x09C
	rcPolicyFail   uint32 = 0x09D
	rcIntegrity    uint32 = 0x09F
	rcTicket       uint32 = 0x0A0
	rcReservedBits uint32 = 0x0A1
	rcBadAuth      uint32 = 0x0A2
	rcExpired      uint32 = 0x0A3
	rcPolicyCC     uint32 = 0x0A4
	rcBinding      uint32 = 0x0A5
	rcCurve        uint32 = 0x0A6
	rcECCPoint     uint32 = 0x0A7

	// Warnings (0x900 + n).
	rcContextGap     uint32 = 0x901
	rcObjectMemory   uint32 = 0x902
	rcSessionMemory  uint32 = 0x903
	rcMemory         uint32 = 0x904
	rcSessionHandles uint32 = 0x905
	rcObjectHandles  uint32 = 0x906
	rcLocality       uint32 = 0x907
	rcReferenceH0    uint32 = 0x910
	rcReferenceS0    uint32 = 0x918
	rcNVRate         uint32 = 0x920
	rcLockout        uint32 = 0x921
	rcRetry          uint32 = 0x922
	rcNVUnavailable  uint32 = 0x923
)

// tpm12BadTag is TPM_BADTAG from the TPM 1.2 main specification Part 2
// §16; tpm12RspCommand is TPM_TAG_RSP_COMMAND.
const (
	tpm12BadTag      uint32 = 0x01E
	tpm12RspCommand  uint16 = 0x00C4
	tpm12TagRquFirst uint16 = 0x00C1
	tpm12TagRquLast  uint16 = 0x00C3
)

// rcError is an engine error carrying the exact TPM_RC to return.
type rcError struct {
	rc  uint32
	why string
}

func (e *rcError) Error() string {
	if e.why == "" {
		return fmt.Sprintf("TPM_RC 0x%03X", e.rc)
	}
	return fmt.Sprintf("TPM_RC 0x%03X: %s", e.rc, e.why)
}

// rcE returns a format-zero (or already fully encoded) response code.
func rcE(rc uint32, why string, args ...any) error {
	return &rcError{rc: rc, why: fmt.Sprintf(why, args...)}
}

// rcP marks a format-one code as applying to parameter n (1-based),
// Part 2 §6.6.3: bit 6 set, number in bits 8..11.
func rcP(rc uint32, n int, why string, args ...any) error {
	return &rcError{rc: rc | 0x040 | uint32(n&0xF)<<8, why: fmt.Sprintf(why, args...)}
}

// rcH marks a format-one code as applying to handle n (1-based).
func rcH(rc uint32, n int, why string, args ...any) error {
	return &rcError{rc: rc | uint32(n&0x7)<<8, why: fmt.Sprintf(why, args...)}
}

// rcS marks a format-one code as applying to session n (1-based).
func rcS(rc uint32, n int, why string, args ...any) error {
	return &rcError{rc: rc | 0x800 | uint32(n&0x7)<<8, why: fmt.Sprintf(why, args...)}
}

// rcOf extracts the response code for err; errors that are not rcError
// become TPM_RC_FAILURE because they indicate an engine bug, not bad input.
func rcOf(err error) uint32 {
	if err == nil {
		return rcSuccess
	}
	if e, ok := err.(*rcError); ok {
		return e.rc
	}
	return rcFailure
}
