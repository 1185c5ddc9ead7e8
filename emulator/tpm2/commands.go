package tpm2

// The command table: every command this TPM implements, one row each,
// grouped by the chapters of TPM 2.0 Part 3 (rev. 1.59). A row names the
// handler (a method of *TPM whose arguments are go-tpm's command
// structure, or an engine-side one from engineside.go, and whose result
// is go-tpm's response structure) and says what the dispatcher must know
// beyond the structures: the authorization role of each auth handle
// (roles; USER when absent), whether the command may change durable
// state (writesNV, writesLazily), whether it flushes contexts
// (flushesContexts, flushesItsObject), and, for commands on the hot
// path, a hand-written decoder or encoder of the same structures
// (fast.go). The options are in command.go.
//
// Where the command's name is taken by the function that does its work
// for other callers too (startup, pcrExtend), the handler's
// name ends in Command. GetCapability(TPM_CAP_COMMANDS) is generated from
// this table.
//
// Handlers that read the table (GetCapability lists it) do so through
// TPM.commands: Go's package initialization refuses a table whose rows
// refer to functions that refer to the table.
var commandTable = table(
	// Part 3 §9–10: start-up and testing.
	cmd((*TPM).startupCommand, writesNV),
	cmd((*TPM).shutdown, writesLazily),
	cmd((*TPM).selfTest),
	cmd((*TPM).incrementalSelfTest),
	cmd((*TPM).getTestResult),

	// Part 3 §11: session commands.
	cmd((*TPM).startAuthSession),
	cmd((*TPM).policyRestart),

	// Part 3 §12: object commands.
	cmd((*TPM).create),
	cmd((*TPM).load),
	cmd((*TPM).loadExternal),
	cmd((*TPM).readPublic),
	cmd((*TPM).activateCredential, roles(roleAdmin, roleUser)),
	cmd((*TPM).makeCredential),
	cmd((*TPM).unseal),
	cmd((*TPM).objectChangeAuth, roles(roleAdmin)),
	cmd((*TPM).createLoaded),

	// Part 3 §13: duplication commands.
	cmd((*TPM).duplicate, roles(roleDup)),
	cmd((*TPM).rewrap),
	cmd((*TPM).importObject),

	// Part 3 §14: asymmetric primitives.
	cmd((*TPM).rsaEncrypt),
	cmd((*TPM).rsaDecrypt),
	cmd((*TPM).ecdhKeyGen),
	cmd((*TPM).ecdhZGen),
	cmd((*TPM).zgen2Phase),
	cmd((*TPM).ecEphemeral),
	cmd((*TPM).eccParameters, encodeWith(encodeECCParameters)),

	// Part 3 §15: symmetric primitives.
	cmd((*TPM).encryptDecrypt),
	cmd((*TPM).encryptDecrypt2),
	cmd((*TPM).hash),
	cmd((*TPM).hmacCommand),

	// Part 3 §16: random number generator.
	cmd((*TPM).getRandom, decodeWith(decodeGetRandom), encodeWith(encodeGetRandom)),
	cmd((*TPM).stirRandom),

	// Part 3 §17: hash, HMAC and event sequences.
	cmd((*TPM).hmacStart),
	cmd((*TPM).hashSequenceStart),
	cmd((*TPM).sequenceUpdate),
	cmd((*TPM).sequenceComplete, flushesItsObject),
	cmd((*TPM).eventSequenceComplete, flushesItsObject),

	// Part 3 §18: attestation.
	cmd((*TPM).certify, roles(roleAdmin, roleUser)),
	cmd((*TPM).certifyCreation),
	cmd((*TPM).quote, decodeWith(decodeQuote), encodeWith(encodeQuote)),
	cmd((*TPM).getSessionAuditDigest),
	cmd((*TPM).getCommandAuditDigest),
	cmd((*TPM).getTime),

	// Part 3 §19: ephemeral EC keys.
	cmd((*TPM).commitCommand),

	// Part 3 §20: signing and signature verification.
	cmd((*TPM).verifySignature),
	cmd((*TPM).sign, decodeWith(decodeSign), encodeWith(encodeSign)),

	// Part 3 §21: command audit.
	cmd((*TPM).setCommandCodeAuditStatus, writesNV),

	// Part 3 §22: integrity collection (PCR).
	// go-tpm decodes TPMT_HA's digest as "the rest of the buffer", so its
	// decoder cannot read a multi-bank TPML_DIGEST_VALUES (what the Linux
	// kernel sends): PCR_Extend has only the hand-written decoder.
	cmd((*TPM).pcrExtendCommand, decodeWith(decodePCRExtend), noDecoder),
	cmd((*TPM).pcrEvent),
	cmd((*TPM).pcrRead, decodeWith(decodePCRRead), encodeWith(encodePCRRead)),
	cmd((*TPM).pcrAllocate, writesNV),
	cmd((*TPM).pcrSetAuthPolicy, writesNV),
	cmd((*TPM).pcrSetAuthValue),
	cmd((*TPM).pcrReset),

	// Part 3 §23: enhanced authorization (EA) commands.
	cmd((*TPM).policySigned),
	cmd((*TPM).policySecret),
	cmd((*TPM).policyTicket),
	cmd((*TPM).policyOr),
	cmd((*TPM).policyPCR),
	cmd((*TPM).policyLocality),
	cmd((*TPM).policyNV),
	cmd((*TPM).policyCounterTimer),
	cmd((*TPM).policyCommandCode),
	cmd((*TPM).policyPhysicalPresence),
	cmd((*TPM).policyCpHash),
	cmd((*TPM).policyNameHash),
	cmd((*TPM).policyDuplicationSelect),
	cmd((*TPM).policyAuthorize),
	cmd((*TPM).policyAuthValue),
	cmd((*TPM).policyPassword),
	cmd((*TPM).policyGetDigest),
	cmd((*TPM).policyNvWritten),
	cmd((*TPM).policyTemplate),
	cmd((*TPM).policyAuthorizeNV),

	// Part 3 §24: hierarchy commands.
	cmd((*TPM).createPrimaryCommand),
	cmd((*TPM).hierarchyControl, writesNV, flushesContexts),
	cmd((*TPM).setPrimaryPolicy, writesNV),
	cmd((*TPM).changePPS, writesNV, flushesContexts),
	cmd((*TPM).changeEPS, writesNV, flushesContexts),
	cmd((*TPM).clear, writesNV, flushesContexts),
	cmd((*TPM).clearControl, writesNV),
	cmd((*TPM).hierarchyChangeAuth, writesNV),

	// Part 3 §25: dictionary attack functions.
	cmd((*TPM).dictionaryAttackLockReset, writesLazily),
	cmd((*TPM).dictionaryAttackParameters, writesNV),

	// Part 3 §26: miscellaneous management functions.
	cmd((*TPM).ppCommands, writesNV),
	cmd((*TPM).setAlgorithmSet, writesNV),

	// Part 3 §28: context management.
	cmd((*TPM).contextSave),
	cmd((*TPM).contextLoad, decodeWith(decodeContextLoad)),
	cmd((*TPM).flushContext, decodeWith(decodeFlushContext)),
	cmd((*TPM).evictControl, writesNV),

	// Part 3 §29: clocks and timers.
	cmd((*TPM).readClock),
	cmd((*TPM).clockSet, writesLazily),
	cmd((*TPM).clockRateAdjust),

	// Part 3 §30: capability commands.
	cmd((*TPM).getCapability, decodeWith(decodeGetCapability), encodeWith(encodeGetCapability)),
	cmd((*TPM).testParms),

	// Part 3 §31: non-volatile storage.
	cmd((*TPM).nvDefineSpace, writesNV),
	cmd((*TPM).nvUndefineSpace, writesNV),
	cmd((*TPM).nvUndefineSpaceSpecial, roles(roleAdmin, roleUser), writesNV),
	cmd((*TPM).nvReadPublic),
	cmd((*TPM).nvWrite, writesNV),
	cmd((*TPM).nvIncrement, writesNV),
	cmd((*TPM).nvExtend, writesNV),
	cmd((*TPM).nvSetBits, writesNV),
	cmd((*TPM).nvWriteLock, writesNV),
	cmd((*TPM).nvGlobalWriteLock, writesNV),
	cmd((*TPM).nvRead),
	cmd((*TPM).nvReadLock, writesNV),
	cmd((*TPM).nvChangeAuth, roles(roleAdmin), writesNV),
	cmd((*TPM).nvCertify),
)
