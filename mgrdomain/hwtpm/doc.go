// Package hwtpm is everything the manager domain asks of the hardware TPM,
// over any go-tpm transport.TPM: drivers/tpmtis in the domain, a tpmfront
// when nested, a swtpm socket in host tests.
//
// It follows TPM 2.0 Part 3 (Commands) for TPM2_CreatePrimary, TPM2_Create,
// TPM2_Load, TPM2_Unseal, TPM2_PolicyPCR, TPM2_NV_DefineSpace,
// TPM2_NV_Increment, TPM2_NV_Read, TPM2_PCR_Read and TPM2_GetRandom; the TCG
// TPM v2.0 Provisioning Guidance for the storage primary's template (the
// ECC P-256 "SRK" template, so the same key is re-derived from the owner
// seed on every boot and nothing has to be persisted in the TPM); the TCG
// PC Client Platform Firmware Profile for the meaning of PCRs 0–7; and
// Xen's vtpmmgr command line for owner_auth= and srk_auth= (see ParseAuth).
//
// What the manager gets:
//
//   - Seal / Unseal: the manager storage key in a keyedHash sealed object
//     under the storage primary, with a PolicyPCR policy over a chosen
//     selection of SHA-256 PCRs. The sealed blob (public and private area)
//     is returned to the caller, who keeps it on its disk. An unseal
//     refused by the policy is ErrPCRPolicy and names the PCRs whose value
//     differs from the one recorded at sealing.
//   - A monotonic NV counter (an NV index of type TPM_NT_COUNTER in the
//     owner range) for rollback protection: CreateCounter, ReadCounter,
//     IncrementCounter. One increment is one hardware NV write.
//   - GetRandom and PCRRead pass-through for the vTPM protocol.
//
// TPM 1.2 hardware (Detect tells the families apart) is TPM12, from
// Open12, with the same methods over TPM 1.2 Part 3's TPM_Seal,
// TPM_Unseal, the monotonic counter commands (TPM_CreateCounter,
// TPM_IncrementCounter, TPM_ReadCounter), TPM_GetRandom and TPM_PcrRead,
// using the OIAP and OSAP authorisation protocols of TPM 1.2 Part 1.
//
// The package is pure Go and builds for tamago.
package hwtpm
