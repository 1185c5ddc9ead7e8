package benchcmd

import (
	"encoding/binary"
	"testing"
)

// Every command's header size field must match its length, or the TPM (and
// the TIS driver's own check) would reject it.
func TestCommandSizes(t *testing.T) {
	for _, tpm2 := range []bool{false, true} {
		for name, c := range map[string][]byte{"GetRandom": GetRandom(tpm2), "Extend": Extend(tpm2, 16)} {
			if got := binary.BigEndian.Uint32(c[2:6]); int(got) != len(c) {
				t.Errorf("tpm2=%v %s: header size %d, length %d", tpm2, name, got, len(c))
			}
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}); err != nil {
		t.Errorf("success response: %v", err)
	}
	if err := Check([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x07}); err == nil {
		t.Error("TPM_RC_LOCALITY accepted")
	}
	if err := Check([]byte{0x80, 0x01}); err == nil {
		t.Error("2-byte response accepted")
	}
}
