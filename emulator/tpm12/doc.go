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
// TPM_UnBind (OAEP and PKCS #1 v1.5); NV
// storage: TPM_NV_DefineSpace, TPM_NV_WriteValue(Auth),
// TPM_NV_ReadValue(Auth), TPM_CAP_NV_LIST and TPM_CAP_NV_INDEX (indices
// asking for the READ_STCLEAR, WRITE_STCLEAR, WRITEDEFINE or GLOBALLOCK
// locks are refused with TPM_BAD_ATTRIBUTES); monotonic counters:
// TPM_CreateCounter, TPM_IncrementCounter, TPM_ReadCounter,
// TPM_ReleaseCounter and TPM_ReleaseCounterOwner. Every other ordinal
// (identity and migration, Sealx, quotes, delegation, transport, DAA, maintenance,
// the physical-presence commands) answers TPM_BAD_ORDINAL and
// GetCapability(TPM_CAP_ORD) reports it unsupported. TPM 2.0 commands sent here answer TPM_BAD_ORDINAL too.
//
// Loaded keys are volatile: _TPM_Init and TPM_OwnerClear flush them.
// TPM_SaveState keeps them, under their handles, in the saved state
// Startup(ST_STATE) resumes (Part 3 §3.3 action 5, as libtpms); any
// other Startup, or any other command first, discards it.
//
// A new TPM is manufactured as swtpm_setup --createek leaves one: an
// RSA-2048 endorsement key, enabled, activated, without an owner, with
// readPubek set. No host asserts physical presence to it, so
// TPM_ForceClear answers TPM_BAD_PRESENCE (as libtpms does while
// presence is not asserted), and a TPM that TPM_OwnerClear left
// disabled and deactivated (Part 3 §6.2, as libtpms) stays so.
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
// changed, so the host stores a blob before it releases the response.
//
// The package uses no os, net or cgo so that it builds for GOOS=tamago.
package tpm12
