// Package conformance holds the TPM 2.0 engine's tests against real
// peers: the differential test that sends the same command sequences to
// the engine and to swtpm (libtpms) and compares response codes and
// every field TPM 2.0 Part 3 determines, and go-tpm's own tpm2/test
// suite run against the engine. It has no code outside its tests.
package conformance
