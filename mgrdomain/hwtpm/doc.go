// Package hwtpm is everything the manager domain asks of the hardware TPM,
// over any go-tpm transport.TPM: drivers/tpmtis in the domain, a tpmfront
// when nested, a swtpm socket in host tests.
//
// It follows TPM 2.0 Part 3 (Commands) for TPM2_CreatePrimary, TPM2_Create,
// TPM2_Load, TPM2_Unseal, TPM2_StartAuthSession, TPM2_PolicyPCR,
// TPM2_PolicyLocality, TPM2_PolicyNV, TPM2_NV_DefineSpace,
// TPM2_NV_Increment, TPM2_NV_Read, TPM2_PCR_Read, TPM2_GetRandom,
// TPM2_LoadExternal, TPM2_VerifySignature, TPM2_PolicyAuthorize,
// TPM2_PolicySecret, TPM2_ActivateCredential, TPM2_Quote and
// TPM2_NV_ReadPublic, and Part 1 for salted sessions, parameter
// encryption and credential protection; the TCG EK Credential Profile
// for the RSA EK template and its certificate's NV index; the TCG
// TPM v2.0 Provisioning Guidance for the storage primary's template (the
// ECC P-256 "SRK" template, so the same key is re-derived from the owner
// seed on every boot and nothing has to be persisted in the TPM); the TCG
// PC Client Platform Firmware Profile for the meaning of PCRs 0–7; and
// Xen's vtpmmgr command line for owner_auth= and srk_auth= (see ParseAuth).
//
// What the manager gets:
//
//   - Seal / Unseal: the manager storage key in a keyedHash sealed object
//     under the storage primary, with a policy of PolicyPCR over a chosen
//     selection of SHA-256 PCRs, PolicyLocality at the manager's locality
//     and PolicyNV on the seal epoch. The sealed blob (public and private
//     area, the primary's name) is returned to the caller, who keeps it
//     on its disk. An unseal refused by the policy is ErrPCRPolicy and
//     names the PCRs whose value differs from the one recorded at
//     sealing; ErrLocality and ErrRetired name the other refusals.
//   - Reseal / Retire: a new blob for the same key whose retirement makes
//     every older blob of this format, on any copy of the disk,
//     unsealable (epoch.go). Blobs of format version 1 (Legacy), sealed
//     before the seal epoch existed, still unseal and cannot be retired.
//   - SealAuthorized / UnsealAuthorized (approved.go): the storage key
//     released to the boot configurations a System Approval Agent signs
//     (TPM2_PolicyAuthorize by its key, TPM2_VerifySignature,
//     TPM2_LoadExternal), each approval under an NV approval counter
//     that AdvanceApprovals moves forward to revoke superseded lists.
//     On TPM 1.2, SealComposite seals to one approved PCR composite
//     (TPM_Seal framed here, approved12.go).
//   - Nothing secret crosses the bus in clear: the storage key, owner_auth=
//     and srk_auth= go in salted HMAC or policy sessions with parameter
//     encryption (tpm.go, "Sessions").
//   - A monotonic NV counter (an NV index of type TPM_NT_COUNTER in the
//     owner range) for rollback protection: CreateCounter, ReadCounter,
//     IncrementCounter. One increment is one hardware NV write.
//   - GetRandom and PCRRead pass-through for the vTPM protocol.
//   - A per-group attestation key for deep quotes (ak.go): an ECC P-256
//     restricted signing key of the endorsement hierarchy re-derived
//     from a template carrying the group UUID (AKTemplate, AKPublic),
//     Quote over SHA-256 PCRs with qualifying data, and the EK (EKPublic,
//     with the manufacturer's certificate) and ActivateCredential for a
//     privacy CA to certify the key. On TPM 1.2 (ak12.go) an identity
//     key from MakeIdentity, whose wrapped blob the caller stores, with
//     ActivateIdentity and Quote.
//
// TPM 1.2 hardware (Detect tells the families apart) is TPM12, from
// Open12, with the same methods (Reseal is Seal, Retire does nothing)
// over TPM 1.2 Part 3's TPM_Seal,
// TPM_Unseal, the monotonic counter commands (TPM_CreateCounter,
// TPM_IncrementCounter, TPM_ReadCounter), TPM_GetRandom, TPM_PcrRead,
// TPM_MakeIdentity, TPM_ActivateIdentity, TPM_LoadKey2, TPM_Quote and
// TPM_FlushSpecific,
// using the OIAP and OSAP authorisation protocols of TPM 1.2 Part 1.
//
// On TPM 1.2 the storage key is on the bus in clear: TPM_Seal's inData
// carries it to the TPM at a format or reseal, TPM_Unseal's output
// carries it back at every start. owner_auth= and srk_auth= never cross
// in clear (OIAP/OSAP send HMACs, and new secrets go ADIP-encrypted), but
// a recording of those HMACs with their nonces lets a weak secret be
// guessed offline. localityAtRelease keeps other software (dom0 at
// locality 0) from unsealing; it does nothing against a sniffer. This
// package does not use a TPM 1.2 transport session (Part 1, 24; Part 3,
// TPM_EstablishTransport, TPM_ExecuteTransport), which is what would add
// the missing part:
//
//   - Confidentiality of parameters: TPM_EstablishTransport with
//     TPM_TRANSPORT_ENCRYPT and the SRK as encHandle takes a fresh 20-byte
//     transport secret encrypted to the SRK's public key (RSA-OAEP);
//     every command then goes wrapped in TPM_ExecuteTransport, whose
//     parameters after the handles are XORed both ways with an MGF1 pad
//     of the nonces and that secret (AES if the TPM offers it). TPM_Seal's
//     inData and TPM_Unseal's secret would cross encrypted, as
//     TPM2_Create's and TPM2_Unseal's do with the sessions of tpm.go.
//   - Exclusivity (TPM_TRANSPORT_EXCLUSIVE): any command from outside the
//     session ends it, so commands interleaved by other software between
//     the manager's are detected (the TPM 2.0 path does not use its
//     counterpart, an exclusive audit session).
//   - A log (TPM_TRANSPORT_LOG, TPM_ReleaseTransportSigned): a signature
//     over every command and response of the session, with ticks and
//     locality; the manager has nobody to show it to.
//
// It would leave the wrapped commands' authorisation areas (nonces and
// HMACs) in clear, so weak owner_auth=/srk_auth= would stay open to
// offline guessing from a recording, as now; it would not bind
// the SRK's public key — TPM_GetPubKey's answer can be substituted on the
// bus, so its digest would have to be recorded at format, as the TPM 2.0
// blob records the storage primary's name; and it would cost an RSA-2048
// decryption with the SRK in the TPM at every start, the slowest kind of
// TPM 1.2 operation, and its own marshalling (go-tpm's legacy package has
// no transport sessions). Nor would it retire an older blob after a
// reseal: TPM_Seal has nothing a later seal could move (Retire does
// nothing here; docs/manager-storage.md 12.9).
//
// The package is pure Go and builds for tamago.
package hwtpm
