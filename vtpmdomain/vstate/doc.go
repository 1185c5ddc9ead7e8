// Package vstate is the vTPM domain's own state store: the TPM engine's
// state blob, kept on the domain's PV disk in the "vstate format, version
// 1" and vouched for by the manager domain. docs/vtpm-storage.md describes
// the format byte by byte, the save and boot protocols and what every
// failure and power cut leaves.
//
// In short: the disk holds two fixed-size slots. Each save seals the state
// with AES-256-GCM under a fresh random key, the slot's header sector
// being the additional data, into the slot the manager does not currently
// point to, flushes, and then sends the manager the 64-byte blob key ‖
// SHA-256(header sector ‖ ciphertext sectors) with SAVEHASHKEY. The new
// slot becomes current only when the manager has acknowledged it, so a
// power cut at any point leaves either the old or the new state loadable.
//
// At boot, Load asks the manager for the blob (LOADHASHKEY), finds the
// slot with that hash, and decrypts it. It never invents a TPM: when
// nothing can be loaded it says why with a distinct error, and only
// ErrFresh (no record anywhere) or an explicit Reset allows a new state to
// be saved.
//
// The package uses only packages that build for GOOS=tamago, so the same
// code runs in the vTPM domain over drivers/blkfront and on the host in
// tests.
package vstate
