// Package tpmtis drives a TPM through the TCG PC Client FIFO interface: the
// TPM Interface Specification (TIS) 1.3 for TPM 1.2 parts and the FIFO
// interface of the TCG PC Client Platform TPM Profile (PTP) Specification for
// TPM 2.0 parts, both memory-mapped at 0xFED40000 with one 4 KiB register
// page per locality.
//
// The driver works at one locality chosen by the caller and only ever touches
// that locality's page, so it can share a TPM with another OS using a
// different locality (for example a Xen manager domain at locality 2 while
// dom0 uses locality 0). It requests the locality for each command and
// relinquishes it afterwards; a locality held by someone else is waited for
// within a bound rather than treated as fatal.
//
// Each command follows the FIFO protocol: commandReady, the command written in
// burstCount-sized pieces while checking stsValid/Expect, tpmGo, a wait for
// dataAvail bounded by the command's duration class, the response read in
// burstCount-sized pieces up to the length in its own header, then
// commandReady again. A command that does not complete in time is aborted
// with commandReady and the driver stays usable. Interrupts are not used: the
// driver polls, as Xen's vtpmmgr does by default.
//
// [TPM] implements go-tpm's transport.TPM (Send) for the tpm2 client and
// io.ReadWriter for go-tpm's legacy TPM 1.2 tpm package. Register access goes
// through the small [Registers] interface; the memory-mapped implementation
// lives in a leaf file built only for GOOS=tamago (see Open).
package tpmtis
