package cmdline

import (
	"errors"
	"strings"
	"testing"
)

var spec = Spec{
	{Name: "loglevel", Values: []string{"error", "info", "debug"}, Default: "info"},
	{Name: "selftest", Flag: true},
	{Name: "uuid", Check: func(s string) error {
		if len(s) != 36 {
			return errors.New("want 36 characters")
		}
		return nil
	}},
}

func TestParse(t *testing.T) {
	v, err := spec.Parse("  selftest   loglevel=debug ")
	if err != nil {
		t.Fatal(err)
	}
	if v.Get("loglevel") != "debug" || !v.Has("selftest") || v.Get("uuid") != "" {
		t.Fatalf("parsed %+v", v)
	}
	v, err = spec.Parse("")
	if err != nil || v.Get("loglevel") != "info" || v.Has("selftest") {
		t.Fatalf("defaults: %+v %v", v, err)
	}
}

func TestParseErrorsNameTheWord(t *testing.T) {
	for line, want := range map[string]string{
		"bogus=1":              `unknown option "bogus=1"`,
		"loglevel=loud":        `accepted values are error|info|debug`,
		"loglevel":             `needs a value`,
		"loglevel=":            `needs a value`,
		"selftest=1":           `is a flag`,
		"selftest selftest":    `given twice`,
		"uuid=short":           `want 36 characters`,
		"loglevel=info bogus2": `unknown option "bogus2"`,
	} {
		_, err := spec.Parse(line)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", line, err, want)
		}
	}
	_, err := spec.Parse("nope")
	if !strings.Contains(err.Error(), "loglevel=error|info|debug (default info)") {
		t.Errorf("usage missing from error: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("loglevel=debug selftest")
	f.Add("a=b=c selftest=")
	f.Fuzz(func(t *testing.T, line string) {
		v, err := spec.Parse(line)
		if err == nil {
			if l := v.Get("loglevel"); l != "error" && l != "info" && l != "debug" {
				t.Fatalf("accepted loglevel %q", l)
			}
		}
	})
}
