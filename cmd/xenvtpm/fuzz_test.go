package main

import (
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// FuzzInputs feeds arbitrary text to the command's parsers of values
// files (pcrs false; size 20 or 32) and PCR lists (pcrs true): no panic,
// and what is accepted is in range.
func FuzzInputs(f *testing.F) {
	f.Add(false, "0 "+strings.Repeat("ab", 32)+"\n# c\nsha256:\n 7 : 0x"+strings.Repeat("00", 32), 32)
	f.Add(false, "0 "+strings.Repeat("ab", 20), 20)
	f.Add(true, "0,2,4", 0)
	f.Add(true, "0-7,16", 0)
	f.Fuzz(func(t *testing.T, pcrs bool, in string, size int) {
		if pcrs {
			l, err := parsePCRList(in)
			if err != nil {
				return
			}
			if _, err := saa.PCRMask(l); err != nil {
				t.Fatalf("parsePCRList(%q) = %v: %v", in, l, err)
			}
			return
		}
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
