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
// The package uses no os, net or cgo so that it builds for GOOS=tamago.
package tpm2
