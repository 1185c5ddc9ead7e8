package main

import (
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

func FuzzParseValues(f *testing.F) {
	f.Add("0 "+strings.Repeat("ab", 32)+"\n# c\nsha256:\n 7 : 0x"+strings.Repeat("00", 32), 32)
	f.Add("0 "+strings.Repeat("ab", 20), 20)
	f.Fuzz(func(t *testing.T, in string, size int) {
		if size != 20 && size != 32 {
			return
		}
		vals, err := parseValues(strings.NewReader(in), size)
		if err != nil {
			return
		}
		for p, v := range vals {
			if p > 23 || len(v) != size {
				t.Fatalf("PCR %d value of %d bytes", p, len(v))
			}
		}
	})
}

func FuzzParsePCRList(f *testing.F) {
	f.Add("0,2,4")
	f.Add("0-7,16")
	f.Fuzz(func(t *testing.T, in string) {
		pcrs, err := parsePCRList(in)
		if err != nil {
			return
		}
		if _, err := saa.PCRMask(pcrs); err != nil {
			t.Fatalf("parsePCRList(%q) = %v: %v", in, pcrs, err)
		}
	})
}
