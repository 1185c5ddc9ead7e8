package tpm12

// Ordinals, TPM Main Part 2 §17 (TPM_ORD_*), of the implemented commands.
const (
	ordOIAP                 uint32 = 0x0000000A
	ordOSAP                 uint32 = 0x0000000B
	ordTakeOwnership        uint32 = 0x0000000D
	ordChangeAuthOwner      uint32 = 0x00000010
	ordExtend               uint32 = 0x00000014
	ordPCRRead              uint32 = 0x00000015
	ordQuote                uint32 = 0x00000016
	ordSeal                 uint32 = 0x00000017
	ordUnseal               uint32 = 0x00000018
	ordUnBind               uint32 = 0x0000001E
	ordCreateWrapKey        uint32 = 0x0000001F
	ordLoadKey              uint32 = 0x00000020
	ordGetPubKey            uint32 = 0x00000021
	ordEvictKey             uint32 = 0x00000022
	ordCertifyKey           uint32 = 0x00000032
	ordCertifyKey2          uint32 = 0x00000033
	ordSign                 uint32 = 0x0000003C
	ordQuote2               uint32 = 0x0000003E
	ordLoadKey2             uint32 = 0x00000041
	ordResetLockValue       uint32 = 0x00000040
	ordGetRandom            uint32 = 0x00000046
	ordSelfTestFull         uint32 = 0x00000050
	ordContinueSelfTest     uint32 = 0x00000053
	ordGetTestResult        uint32 = 0x00000054
	ordOwnerClear           uint32 = 0x0000005B
	ordDisableOwnerClear    uint32 = 0x0000005C
	ordForceClear           uint32 = 0x0000005D
	ordGetCapability        uint32 = 0x00000065
	ordGetCapabilityOwner   uint32 = 0x00000066
	ordOwnerSetDisable      uint32 = 0x0000006E
	ordMakeIdentity         uint32 = 0x00000079
	ordActivateIdentity     uint32 = 0x0000007A
	ordReadPubek            uint32 = 0x0000007C
	ordOwnerReadInternalPub uint32 = 0x00000081
	ordSaveState            uint32 = 0x00000098
	ordStartup              uint32 = 0x00000099
	ordFlushSpecific        uint32 = 0x000000BA
	ordPCRReset             uint32 = 0x000000C8
	ordNVDefineSpace        uint32 = 0x000000CC
	ordNVWriteValue         uint32 = 0x000000CD
	ordNVWriteValueAuth     uint32 = 0x000000CE
	ordNVReadValue          uint32 = 0x000000CF
	ordNVReadValueAuth      uint32 = 0x000000D0
	ordCreateCounter        uint32 = 0x000000DC
	ordIncrementCounter     uint32 = 0x000000DD
	ordReadCounter          uint32 = 0x000000DE
	ordReleaseCounter       uint32 = 0x000000DF
	ordReleaseCounterOwner  uint32 = 0x000000E0
)

// The command table: every command this TPM implements, one row each,
// in the order of the chapters of TPM Main Part 3 (rev 116). A row names
// the ordinal and the handler (a method of *TPM whose argument is the
// command's parameter structure and whose result is the response's, both
// from encoding.go or next to the handler) and what the dispatcher must
// know beyond them: the authorization sessions (withAuth; none when
// absent), the leading handles (withHandles), the state the command
// needs (checks) and whether it may change durable state (writesNV).
// The options are in command.go. GetCapability(TPM_CAP_ORD) answers from
// this table; every other ordinal gets TPM_BAD_ORDINAL.
//
// Handlers that read the table do so through TPM.commands: Go's package
// initialization refuses a table whose rows refer to functions that
// refer to the table.
var commandTable = table(
	// Part 3 §3: start-up and state.
	cmd(ordStartup, (*TPM).startup, writesNV),
	cmd(ordSaveState, (*TPM).saveState, writesNV),

	// Part 3 §4: testing.
	cmd(ordSelfTestFull, (*TPM).selfTestFull),
	cmd(ordContinueSelfTest, (*TPM).continueSelfTest),
	cmd(ordGetTestResult, (*TPM).getTestResult, checks(inFailureMode)),

	// Part 3 §5: admin opt-in.
	cmd(ordOwnerSetDisable, (*TPM).ownerSetDisable, withAuth(auth1), checks(needsOwner), writesNV),

	// Part 3 §5: admin opt-in, with physical presence (pp.go).
	cmd(ordPhysicalEnable, (*TPM).physicalEnable, writesNV),
	cmd(ordPhysicalDisable, (*TPM).physicalDisable, checks(needsEnabled), writesNV),
	cmd(ordPhysicalSetDeactivated, (*TPM).physicalSetDeactivated, checks(needsEnabled), writesNV),
	cmd(ordSetTempDeactivated, (*TPM).setTempDeactivated, withAuth(auth1), authOptional, checks(needsActive)),

	// Part 3 §6: admin ownership.
	cmd(ordTakeOwnership, (*TPM).takeOwnership, withAuth(auth1), checks(needsEnabled), writesNV),
	cmd(ordOwnerClear, (*TPM).ownerClear, withAuth(auth1), checks(needsActive|needsOwner), writesNV),
	cmd(ordForceClear, (*TPM).forceClear, checks(needsActive), writesNV),
	cmd(ordDisableOwnerClear, (*TPM).disableOwnerClear, withAuth(auth1), checks(needsActive|needsOwner), writesNV),
	cmd(ordPhysicalPresence, (*TPM).tscPhysicalPresence, writesNV),
	cmd(ordResetEstablishmentBit, (*TPM).tscResetEstablishmentBit, writesNV),

	// Part 3 §7: capabilities.
	cmd(ordGetCapability, (*TPM).getCapability, checks(inFailureMode)),
	cmd(ordGetCapabilityOwner, (*TPM).getCapabilityOwner, withAuth(auth1), checks(needsActive|needsOwner)),

	// Part 3 §9: administrative functions, management.
	cmd(ordResetLockValue, (*TPM).resetLockValue, withAuth(auth1), checks(needsActive|needsOwner)),

	// Part 3 §10: storage functions.
	cmd(ordSeal, (*TPM).seal, withAuth(auth1), withHandles(1), checks(needsActive|needsOwner)),
	cmd(ordUnseal, (*TPM).unseal, withAuth(auth2), withHandles(1), checks(needsActive|needsOwner)),
	cmd(ordUnBind, (*TPM).unBind, withAuth(auth1), authOptional, withHandles(1), checks(needsActive|needsOwner)),
	cmd(ordCreateWrapKey, (*TPM).createWrapKey, withAuth(auth1), withHandles(1), checks(needsActive|needsOwner)),
	cmd(ordLoadKey2, (*TPM).loadKey2, withAuth(auth1), authOptional, withHandles(1), outHandles(1), checks(needsActive|needsOwner)),
	cmd(ordGetPubKey, (*TPM).getPubKey, withAuth(auth1), authOptional, withHandles(1), checks(needsActive|needsOwner)),

	// Part 3 §13: cryptographic functions.
	cmd(ordSign, (*TPM).sign, withAuth(auth1), authOptional, withHandles(1), checks(needsActive|needsOwner)),
	cmd(ordGetRandom, (*TPM).getRandom, checks(needsActive)),
	cmd(ordCertifyKey, (*TPM).certifyKey, withAuth(auth2), authAtLeast(authNone), withHandles(2), checks(needsActive|needsOwner)),
	cmd(ordCertifyKey2, (*TPM).certifyKey2, withAuth(auth2), authAtLeast(authNone), withHandles(2), checks(needsActive|needsOwner)),

	// Part 3 §14: endorsement key handling.
	cmd(ordReadPubek, (*TPM).readPubek, checks(needsActive)),

	// Part 3 §15: identity creation and activation.
	cmd(ordMakeIdentity, (*TPM).makeIdentity, withAuth(auth2), authAtLeast(auth1), checks(needsActive|needsOwner)),
	cmd(ordActivateIdentity, (*TPM).activateIdentity, withAuth(auth2), authAtLeast(auth1), withHandles(1), checks(needsActive|needsOwner)),

	// Part 3 §16: integrity collection and reporting.
	cmd(ordExtend, (*TPM).extend),
	cmd(ordPCRRead, (*TPM).pcrRead, checks(needsActive)),
	cmd(ordPCRReset, (*TPM).pcrReset),
	cmd(ordQuote, (*TPM).quote, withAuth(auth1), authOptional, withHandles(1), checks(needsActive|needsOwner)),
	cmd(ordQuote2, (*TPM).quote2, withAuth(auth1), authOptional, withHandles(1), checks(needsActive|needsOwner)),

	// Part 3 §17: changing authData.
	cmd(ordChangeAuthOwner, (*TPM).changeAuthOwner, withAuth(auth1), checks(needsActive|needsOwner), writesNV),

	// Part 3 §18: authorization sessions.
	cmd(ordOIAP, (*TPM).oiap),
	cmd(ordOSAP, (*TPM).osap, checks(needsOwner)),

	// Part 3 §20: NV storage.
	cmd(ordNVDefineSpace, (*TPM).nvDefineSpace, withAuth(auth1), authOptional, writesNV),
	cmd(ordNVWriteValue, (*TPM).nvWriteValue, withAuth(auth1), authOptional, writesNV),
	cmd(ordNVWriteValueAuth, (*TPM).nvWriteValueAuth, withAuth(auth1), checks(needsActive|needsOwner), writesNV),
	cmd(ordNVReadValue, (*TPM).nvReadValue, withAuth(auth1), authOptional),
	cmd(ordNVReadValueAuth, (*TPM).nvReadValueAuth, withAuth(auth1), checks(needsActive|needsOwner)),

	// Part 3 §22: eviction.
	cmd(ordFlushSpecific, (*TPM).flushSpecific),

	// Part 3 §25: monotonic counters.
	cmd(ordCreateCounter, (*TPM).createCounter, withAuth(auth1), checks(needsActive|needsOwner), writesNV),
	cmd(ordIncrementCounter, (*TPM).incrementCounter, withAuth(auth1), checks(needsActive|needsOwner), writesNV),
	cmd(ordReadCounter, (*TPM).readCounter, checks(needsActive)),
	cmd(ordReleaseCounter, (*TPM).releaseCounter, withAuth(auth1), checks(needsActive), writesNV),
	cmd(ordReleaseCounterOwner, (*TPM).releaseCounterOwner, withAuth(auth1), checks(needsActive|needsOwner), writesNV),

	// Part 3 §27: deprecated commands.
	cmd(ordEvictKey, (*TPM).evictKeyCmd, withHandles(1), checks(needsActive|needsOwner)),
	cmd(ordLoadKey, (*TPM).loadKey, withAuth(auth1), authOptional, withHandles(1), checks(needsActive|needsOwner)),

	// Part 3: TPM_OwnerReadInternalPub.
	cmd(ordOwnerReadInternalPub, (*TPM).ownerReadInternalPub, withAuth(auth1), checks(needsActive|needsOwner)),
)
