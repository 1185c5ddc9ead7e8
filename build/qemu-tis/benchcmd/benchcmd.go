// Package benchcmd holds the raw TPM commands the QEMU TIS proof times, so the
// image (through the TIS driver) and the host tool (straight to swtpm's
// socket) send byte-identical commands. Encodings follow TPM 2.0 Part 3
// (TPM2_GetRandom, TPM2_PCR_Extend with a password session) and TPM Main
// Part 3 for 1.2 (TPM_GetRandom, TPM_Extend).
package benchcmd

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// GetRandom asks for 32 random bytes.
func GetRandom(tpm2 bool) []byte {
	if tpm2 {
		return []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 32}
	}
	return []byte{0x00, 0xC1, 0, 0, 0, 14, 0, 0, 0, 0x46, 0, 0, 0, 32}
}

// Extend extends a fixed digest into pcr (SHA-256 bank for 2.0).
func Extend(tpm2 bool, pcr uint32) []byte {
	if !tpm2 {
		b := []byte{0x00, 0xC1, 0, 0, 0, 34, 0, 0, 0, 0x14}
		b = binary.BigEndian.AppendUint32(b, pcr)
		return append(b, bytes.Repeat([]byte{0x5A}, 20)...)
	}
	b := []byte{0x80, 0x02, 0, 0, 0, 65, 0, 0, 0x01, 0x82}
	b = binary.BigEndian.AppendUint32(b, pcr)
	b = append(b, 0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 1, 0, 0) // TPM_RS_PW, empty auth
	b = append(b, 0, 0, 0, 1, 0, 0x0B)                      // one SHA-256 digest
	return append(b, bytes.Repeat([]byte{0x5A}, 32)...)
}

// Check returns an error unless rsp is a well-formed success response.
func Check(rsp []byte) error {
	if len(rsp) < 10 {
		return fmt.Errorf("response of %d bytes", len(rsp))
	}
	if rc := binary.BigEndian.Uint32(rsp[6:10]); rc != 0 {
		return fmt.Errorf("response code 0x%x", rc)
	}
	return nil
}
