// Package conformance compares the TPM 1.2 engine with Debian's swtpm in
// TPM 1.2 mode (libtpms) on the same command sequences: response codes,
// structure sizes, and every value both must agree on (PCR values after
// the same extends, resets and resumes; the capability layouts; the
// flags). It has tests only.
//
// Where the two differ by design the steps compare the shape, not the
// value:
//   - the manufacturer (TPM_CAP_PROP_MANUFACTURER, the vendor ID of
//     TPM_CAP_VERSION_VAL): "XVTP" here, "IBM" in libtpms;
//   - the firmware revision in TPM_CAP_VERSION_VAL's version (Part 2
//     §21.6 leaves revMajor/revMinor to the manufacturer);
//   - TPM_CAP_PROP_TIS_TIMEOUT (the TIS defaults 750/2000/750/750 ms
//     here, 1 s each in libtpms) and TPM_CAP_PROP_DURATION (2/20/60 s
//     here, 2/5/60 s in libtpms);
//   - GetRandom's bytes, nonces, session handles, GetTestResult's text
//     and the endorsement key itself; the SRK, sealed blobs' encData;
//   - the permanent flags CEKPUsed and enableRevokeEK, which record how
//     the endorsement key was made (TPM_CreateEndorsementKeyPair for
//     swtpm here, the engine's manufacture otherwise).
//
// The ownership and sealing tests (TestSwtpm12Ownership,
// TestSwtpm12Seal) each start their own pair: OwnerClear leaves a TPM
// disabled and deactivated, and only physical presence, which neither
// side is given, enables it again.
//
// swtpm starts unmanufactured: the test gives it an EK with
// TPM_CreateEndorsementKeyPair, as swtpm_setup --createek does, before
// the steps that need one.
package conformance
