package tpm12

import "fmt"

// Return codes, TPM Main Part 2 §16 (TPM_RESULT). Only the values the
// engine returns are named; the names follow the specification.
const (
	rcSuccess           uint32 = 0x00
	rcAuthFail          uint32 = 0x01  // TPM_AUTHFAIL
	rcBadIndex          uint32 = 0x02  // TPM_BADINDEX
	rcBadParameter      uint32 = 0x03  // TPM_BAD_PARAMETER
	rcDeactivated       uint32 = 0x06  // TPM_DEACTIVATED
	rcDisabled          uint32 = 0x07  // TPM_DISABLED
	rcDisabledCmd       uint32 = 0x08  // TPM_DISABLED_CMD
	rcFail              uint32 = 0x09  // TPM_FAIL
	rcBadOrdinal        uint32 = 0x0A  // TPM_BAD_ORDINAL
	rcInvalidKeyHandle  uint32 = 0x0C  // TPM_INVALID_KEYHANDLE
	rcInvalidPCRInfo    uint32 = 0x10  // TPM_INVALID_PCR_INFO
	rcNoSRK             uint32 = 0x12  // TPM_NOSRK
	rcResources         uint32 = 0x15  // TPM_RESOURCES
	rcBadParamSize      uint32 = 0x19  // TPM_BAD_PARAM_SIZE
	rcFailedSelfTest    uint32 = 0x1C  // TPM_FAILEDSELFTEST
	rcAuth2Fail         uint32 = 0x1D  // TPM_AUTH2FAIL
	rcBadTag            uint32 = 0x1E  // TPM_BADTAG
	rcInvalidAuthHandle uint32 = 0x22  // TPM_INVALID_AUTHHANDLE
	rcNoEndorsement     uint32 = 0x23  // TPM_NO_ENDORSEMENT
	rcInvalidPostInit   uint32 = 0x26  // TPM_INVALID_POSTINIT
	rcBadMode           uint32 = 0x2C  // TPM_BAD_MODE
	rcNotResetable      uint32 = 0x32  // TPM_NOTRESETABLE
	rcNotLocal          uint32 = 0x33  // TPM_NOTLOCAL
	rcInvalidResource   uint32 = 0x35  // TPM_INVALID_RESOURCE
	rcBadLocality       uint32 = 0x3D  // TPM_BAD_LOCALITY
	rcClearDisabled     uint32 = 0x05  // TPM_CLEAR_DISABLED
	rcInstallDisabled   uint32 = 0x0B  // TPM_INSTALL_DISABLED
	rcInappropriateEnc  uint32 = 0x0E  // TPM_INAPPROPRIATE_ENC
	rcOwnerSet          uint32 = 0x14  // TPM_OWNER_SET
	rcDecryptError      uint32 = 0x21  // TPM_DECRYPT_ERROR
	rcInvalidKeyUsage   uint32 = 0x24  // TPM_INVALID_KEYUSAGE
	rcWrongEntityType   uint32 = 0x25  // TPM_WRONG_ENTITYTYPE
	rcBadKeyProperty    uint32 = 0x28  // TPM_BAD_KEY_PROPERTY
	rcBadPresence       uint32 = 0x2D  // TPM_BAD_PRESENCE
	rcBadVersion        uint32 = 0x2E  // TPM_BAD_VERSION
	rcInvalidStructure  uint32 = 0x43  // TPM_INVALID_STRUCTURE
	rcNotSealedBlob     uint32 = 0x13  // TPM_NOTSEALED_BLOB
	rcWrongPCRVal       uint32 = 0x18  // TPM_WRONGPCRVAL
	rcNoSpace           uint32 = 0x11  // TPM_NOSPACE
	rcBadDataSize       uint32 = 0x2B  // TPM_BAD_DATASIZE
	rcAuthConflict      uint32 = 0x3B  // TPM_AUTH_CONFLICT
	rcPerNoWrite        uint32 = 0x3F  // TPM_PER_NOWRITE
	rcBadAttributes     uint32 = 0x42  // TPM_BAD_ATTRIBUTES
	rcNotFullWrite      uint32 = 0x46  // TPM_NOT_FULLWRITE
	rcMaxNVWrites       uint32 = 0x48  // TPM_MAXNVWRITES
	rcBadCounter        uint32 = 0x45  // TPM_BAD_COUNTER
	rcKeyNotFound       uint32 = 0x0D  // TPM_KEYNOTFOUND
	rcEncryptError      uint32 = 0x20  // TPM_ENCRYPT_ERROR
	rcMigrateFail       uint32 = 0x0F  // TPM_MIGRATEFAIL
	rcInappropriateSig  uint32 = 0x27  // TPM_INAPPROPRIATE_SIG
	rcBadType           uint32 = 0x34  // TPM_BAD_TYPE
	rcDefendLockRunning uint32 = 0x803 // TPM_DEFEND_LOCK_RUNNING (non-fatal)
)

// tpmError is a TPM_RESULT carried as a Go error, with context for tests
// and logs; the response carries only the code.
type tpmError struct {
	rc  uint32
	msg string
}

func (e *tpmError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("TPM_RESULT %#x", e.rc)
	}
	return fmt.Sprintf("TPM_RESULT %#x: %s", e.rc, e.msg)
}

// rcE returns the error carrying rc.
func rcE(rc uint32, format string, args ...any) error {
	return &tpmError{rc: rc, msg: fmt.Sprintf(format, args...)}
}

// rcOf is the response code of err: its TPM_RESULT, or TPM_FAIL for an
// error that is not one (an engine bug).
func rcOf(err error) uint32 {
	if e, ok := err.(*tpmError); ok {
		return e.rc
	}
	return rcFail
}
