// Package tpm12 is a TPM 1.2 implemented in Go: the personality of the
// vTPM for guests whose kernels speak TPM 1.2 (stock xen-tpmfront
// registers every vTPM as one), beside the TPM 2.0 engine of
// emulator/tpm2, whose shape it shares: New, Process, Save, Load, Reset,
// NVChanged and WritesNV, a command table with one row per command
// (commands.go), and a versioned, self-checking state blob (state.go).
//
// It follows TCG TPM Main Specification version 1.2, revision 116 (Part
// 1 Design Principles, Part 2 Structures, Part 3 Commands), and the TCG
// PC Client Specific Implementation Specification for PCR attributes
// and locality rules. go-tpm has no TPM 1.2 structures; those this
// engine uses are defined, with their marshalling, in encoding.go.
//
// Implemented ordinals: TPM_Startup (ST_CLEAR, ST_STATE, ST_DEACTIVATED),
// TPM_SaveState, TPM_SelfTestFull, TPM_ContinueSelfTest,
// TPM_GetTestResult, TPM_GetCapability (TPM_CAP_ORD, _ALG, _PID, _FLAG,
// _PROPERTY, _VERSION, _KEY_HANDLE, _CHECK_LOADED, _HANDLE, _VERSION_VAL),
// TPM_GetCapabilityOwner,
// TPM_GetRandom, TPM_ReadPubek, TPM_Extend, TPM_PCRRead, TPM_PCR_Reset,
// TPM_OIAP, TPM_OSAP (owner, SRK, loaded keys, counters, NV indices)
// and TPM_FlushSpecific (sessions, keys); ownership:
// TPM_TakeOwnership, TPM_OwnerClear, TPM_ForceClear,
// TPM_DisableOwnerClear, TPM_OwnerSetDisable, TPM_ChangeAuthOwner,
// TPM_OwnerReadInternalPub and TPM_ResetLockValue; TPM_Seal and
// TPM_Unseal under the SRK or a loaded storage key (TPM_PCR_INFO and
// TPM_PCR_INFO_LONG); keys (loadedkey.go, keys.go): TPM_CreateWrapKey
// (RSA of 1024 to 2048 bits; libtpms also makes keys from 512 bits,
// which Go's crypto/rsa does not use), TPM_LoadKey2, TPM_LoadKey,
// TPM_GetPubKey, TPM_EvictKey, TPM_Sign (_SHA1, _DER, _INFO) and
// TPM_UnBind (OAEP and PKCS #1 v1.5); attestation (attest.go,
// identity.go): TPM_Quote, TPM_Quote2, TPM_CertifyKey(2), TPM_MakeIdentity
// and TPM_ActivateIdentity (TPM_EK_BLOB_ACTIVATE and the TPM 1.1
// TPM_ASYM_CA_CONTENTS); NV
// storage: TPM_NV_DefineSpace, TPM_NV_WriteValue(Auth),
// TPM_NV_ReadValue(Auth), TPM_CAP_NV_LIST and TPM_CAP_NV_INDEX, with
// the READ_STCLEAR, WRITE_STCLEAR, WRITEDEFINE and GLOBALLOCK locks;
// TSC_ResetEstablishmentBit (localities 3 and 4); physical presence:
// TSC_PhysicalPresence, TPM_PhysicalEnable,
// TPM_PhysicalDisable, TPM_PhysicalSetDeactivated and
// TPM_SetTempDeactivated (on presence only); monotonic counters:
// TPM_CreateCounter, TPM_IncrementCounter, TPM_ReadCounter,
// TPM_ReleaseCounter and TPM_ReleaseCounterOwner. Every other ordinal
// (migration, TPM_DeepQuote, Sealx, delegation, transport, DAA, maintenance,
// TPM_SetOperatorAuth) answers TPM_BAD_ORDINAL and
// GetCapability(TPM_CAP_ORD) reports it unsupported. TPM 2.0 commands sent here answer TPM_BAD_ORDINAL too.
//
// Loaded keys are volatile: _TPM_Init and TPM_OwnerClear flush them.
// TPM_SaveState keeps them, under their handles, with the rest of the
// saved state Startup(ST_STATE) resumes (Part 3 §3.3 action 5, as
// libtpms).
//
// A new TPM is manufactured as swtpm_setup --createek leaves one: an
// RSA-2048 endorsement key, enabled, activated, without an owner, with
// readPubek, CEKPUsed and physicalPresenceCMDEnable set and
// enableRevokeEK, physicalPresenceHWEnable and
// physicalPresenceLifetimeLock clear (TPM_CAP_FLAG_PERMANENT compares
// equal with swtpm's after its setup).
//
// Physical presence (pp.go): a vTPM has no presence pin, so hardware
// presence is never asserted; presence is the software flag that
// TSC_PhysicalPresence(PRESENT) sets while physicalPresenceCMDEnable
// is set and physicalPresenceLock is not. As on a PC, whoever starts the
// TPM plays the BIOS: it asserts presence for an administrator who
// wants it, or locks it (NOTPRESENT|LOCK) before the guest's software
// runs, so that no software can assert it until the next
// Startup(ST_CLEAR). The vTPM domain does so after its Startup, as its
// pp= option says (off by default: locked); a guest's own firmware does
// so when the guest starts the TPM itself. With presence, a TPM that
// TPM_OwnerClear or TPM_ForceClear left disabled and deactivated
// (Part 3 §6.2) is enabled and activated again with
// TPM_PhysicalEnable and TPM_PhysicalSetDeactivated(FALSE), as a PC user
// does in the BIOS; without it those commands and TPM_ForceClear answer
// TPM_BAD_PRESENCE. The engine accepts TSC_PhysicalPresence at every
// locality, as libtpms does: what decides is who sends it before the
// lock. Changes of the permanent deactivated flag take effect at the
// next Startup(ST_CLEAR), as in libtpms.
//
// NV locks: a zero-size TPM_NV_WriteValue(Auth) sets an index's
// bWriteSTClear and bWriteDefine (the latter for good, stored), a
// zero-size TPM_NV_ReadValue(Auth) its bReadSTClear (cleared by the next
// write), and a zero-size write of TPM_NV_INDEX0 sets bGlobalLock; locked
// writes and redefinitions answer TPM_AREA_LOCKED, locked reads
// TPM_DISABLED_CMD. bReadSTClear, bWriteSTClear and bGlobalLock are
// volatile: Startup(ST_CLEAR) clears them and TPM_SaveState keeps them
// for Startup(ST_STATE).
//
// Dictionary-attack defence (da.go) is libtpms': from the sixth failed
// authorization on, each failure locks authorized commands out for 1 s,
// 2 s, 4 s, ... (TPM_DEFEND_LOCK_RUNNING); TPM_ResetLockValue with owner
// authorization or a power cycle clears the count.
//
// A TPM is driven through Process, which takes one command buffer and
// the locality it arrived on and always returns a well-formed response,
// even for garbage input. A TPM is not safe for concurrent use. State
// blobs begin with a magic that names the family ("XVTPM12\x00"; the
// TPM 2.0 engine's is "XVTPMST\x00"), and each engine refuses the
// other's. After each command NVChanged says whether durable state
// changed, so the host stores a blob before it releases the response;
// if it cannot, RestorePersistent puts back the blob last stored and
// keeps the volatile state. What TPM_SaveState preserved is discarded by
// the first command after Startup other than Startup, not by the
// commands refused before Startup (as in libtpms). InitPCR sets a PCR to
// a value from the platform's hardware TPM (hwinitpcr=).
//
// The package uses no os, net or cgo so that it builds for GOOS=tamago.
package tpm12
