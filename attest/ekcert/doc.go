// Package ekcert issues and checks TPM 2.0 endorsement key certificates as
// the TCG EK Credential Profile for TPM Family 2.0, Level 0 (version 2.x,
// section 3 "EK Credential" and its X.509 fields; section 2.2.1 for the NV
// indices) describes them, for the EKs the TCG default templates make:
// RSA-2048 (template L-1, go-tpm's tpm2.RSAEKTemplate) and ECC NIST P-256
// (template L-2, tpm2.ECCEKTemplate).
//
// A certificate has an empty subject; the TPM is named by a critical
// subjectAltName whose one directoryName holds tcg-at-tpmManufacturer,
// tcg-at-tpmModel and tcg-at-tpmVersion (2.23.133.2.1-3), each in an RDN of
// its own as UTF8String. It carries a critical basicConstraints with cA
// FALSE, a critical keyUsage (keyEncipherment for an RSA EK, keyAgreement
// for an ECC EK: an EK decrypts, it never signs), a non-critical
// authorityKeyIdentifier, a non-critical subjectDirectoryAttributes with
// tcg-at-tpmSpecification (2.23.133.2.16) and a non-critical
// extendedKeyUsage tcg-kp-EKCertificate (2.23.133.8.1), which some verifiers
// require to tell an EK certificate from others. The issuer is a
// per-group CA made by NewCA.
//
// Go's crypto/x509 builds and signs the certificate and checks the chain;
// this package encodes and parses strictly (DER, with x/crypto/cryptobyte)
// the two extensions crypto/x509 does not know, and takes the critical
// subjectAltName off crypto/x509's list of unhandled critical extensions
// only after it has parsed it itself.
package ekcert
