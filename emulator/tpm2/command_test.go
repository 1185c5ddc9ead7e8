package tpm2

import (
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// TestGoTPMDecoderErrorText pins the wording of go-tpm's decoder errors
// that unmarshalParams reads (paramErrRE and the "ran out of data"
// family) to turn them into format-one response codes naming the
// parameter. A go-tpm release that words them differently fails here
// rather than silently answering every malformed command as parameter 1.
func TestGoTPMDecoderErrorText(t *testing.T) {
	nvWrite := func(params ...byte) *call {
		return &call{def: commandTable[uint32(gt.TPMCCNVWrite)], handles: []uint32{rhOwner, 0x01000000}, params: params}
	}
	for _, tc := range []struct {
		name string
		c    *call
		want uint32
	}{
		// data (parameter 1) is a TPM2B promising 3 octets, giving 2.
		{"first parameter short", nvWrite(0, 3, 1, 2), rcInsufficient | 0x040 | 1<<8},
		// offset (parameter 2) is a UINT16 cut after one octet.
		{"second parameter short", nvWrite(0, 1, 9, 0), rcInsufficient | 0x040 | 2<<8},
		// offset missing altogether.
		{"second parameter missing", nvWrite(0, 1, 9), rcInsufficient | 0x040 | 2<<8},
		{"trailing octets", nvWrite(0, 1, 9, 0, 0, 7), rcSize},
	} {
		_, err := unmarshalParams[gt.NVWrite](tc.c)
		if got := rcOf(err); got != tc.want {
			t.Errorf("%s: rc %#x, want %#x (go-tpm said: %v)", tc.name, got, tc.want, err)
		}
	}
}
