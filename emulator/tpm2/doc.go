// Package tpm2 is a TPM 2.0 implemented in Go: the engine behind every
// guest's vTPM and behind the host daemon cmd/vtpmd.
//
// It follows TPM 2.0 Library Specification rev 1.59 (Part 1 Architecture,
// Part 2 Structures, Part 3 Commands) and the TCG PC Client Platform TPM
// Profile for PCR and locality rules. Wire structures, their marshalling
// and the KDFs come from go-tpm's tpm2 package (v0.9.8); the command
// structures of that package double as this engine's command table, so
// handle counts and authorization requirements are taken from the same
// definitions clients use.
//
// A TPM is driven through Process, which takes one command buffer and the
// locality it arrived on and always returns a well-formed response, even
// for garbage input. A TPM is not safe for concurrent use: callers
// serialize Process, Save and the other methods per instance. Any number
// of instances may live in one process.
//
// Persistence is the host's: Save returns the state as a self-checking
// blob and New or Load take it back. After each command NVChanged says
// whether durable state changed (an NV index, a persistent object, a
// seed, a hierarchy's authorization and the like, compared by content,
// so writing the data an index already holds is no change); the host
// stores a blob then, before it releases the response. The clock, the
// dictionary-attack counters and the orderly-shutdown state change
// without asking for a save, as a real TPM keeps them in RAM and writes
// them at intervals and at TPM2_Shutdown: they go with the next blob, and
// a host that stops the TPM writes SaveAtStop. After a stop without it,
// the next start marks the clock unsafe and, if a DA-protected
// authorization had failed, counts one failure for those that may be
// lost. (*TPM).WritesNV tells a host that rations saves whether a
// command may need one now (it depends on state: an audited command that
// starts a new audit digest moves the durable audit counter, and while a
// PIN index is defined every use of an index's authValue may move its
// pinCount, even in NV_Read or PolicySecret).
//
// The package uses no os, net or cgo so that it builds for GOOS=tamago.
package tpm2
