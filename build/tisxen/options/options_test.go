package options

import (
	"strings"
	"testing"
)

func TestOptionsDefaults(t *testing.T) {
	v, err := Spec().Parse("")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"tpmlocality": "0", "tpmiomem": "0xfed40000", "tpmirq": "0", "mode": "checks", "loops": "200",
	} {
		if got := v.Get(name); got != want {
			t.Errorf("%s defaults to %q, want %q", name, got, want)
		}
	}
}

func TestOptionsAccepted(t *testing.T) {
	v, err := Spec().Parse("tpmlocality=2 tpmiomem=0xFED40000 tpmirq=0 mode=load loops=5000")
	if err != nil {
		t.Fatal(err)
	}
	if v.Get("tpmlocality") != "2" || v.Get("mode") != "load" || v.Get("loops") != "5000" {
		t.Errorf("parsed %v %v %v", v.Get("tpmlocality"), v.Get("mode"), v.Get("loops"))
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"tpmirq=5", "only tpmirq=0 (polling)"},
		{"tpmirq=probe", "only tpmirq=0 (polling)"},
		{"tpmlocality=5", "accepted values are 0|1|2|3|4"},
		{"tpmiomem=fed40000", "not a number"},
		{"tpmiomem=0xfed40800", "not page aligned"},
		{"tpmiomem=0x10000000", "must lie in 0xc0000000-0xffffffff"},
		{"tpmiomem=0xffffe000", "must lie in 0xc0000000-0xffffffff"},
		{"loops=0", "want a count"},
		{"loops=many", "want a count"},
		{"mode=fast", "accepted values are checks|load"},
	} {
		_, err := Spec().Parse(tc.line)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.line, err, tc.want)
		}
	}
}
