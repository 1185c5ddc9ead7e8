package cmdline

import (
	"strings"
	"testing"
)

var documented = Spec{
	{Name: "loglevel", Values: []string{"error", "info", "debug"}, Default: "info", Help: "console verbosity"},
	{Name: "selftest", Flag: true, Help: "run the self-test first"},
	{Name: "rate", Form: "N/s|N/m", Default: "6/m", Check: func(string) error { return nil },
		Help: "how fast", Doc: "Past it, commands\n wait."},
}

func TestMarkdown(t *testing.T) {
	want := "| option | value | default | meaning |\n" +
		"|---|---|---|---|\n" +
		"| `loglevel` | `error\\|info\\|debug` | `info` | Console verbosity. |\n" +
		"| `selftest` | flag | — | Run the self-test first. |\n" +
		"| `rate` | `N/s\\|N/m` | `6/m` | How fast. Past it, commands wait. |\n"
	if got := documented.Markdown(); got != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestUsageShowsForm(t *testing.T) {
	if u := documented.Usage(); !strings.Contains(u, "  rate=N/s|N/m (default 6/m): how fast\n") {
		t.Errorf("usage:\n%s", u)
	}
}

func TestCheckDocs(t *testing.T) {
	if err := documented.CheckDocs(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    Option
		want string
	}{
		{Option{Name: "a", Form: "N"}, "no Help"},
		{Option{Name: "a", Help: "x\ny", Form: "N"}, "more than one line"},
		{Option{Name: "a", Help: "x"}, "without a Form"},
		{Option{Name: "a", Help: "x", Flag: true, Default: "1"}, "a flag takes no value"},
		{Option{Name: "a", Help: "x", Values: []string{"0"}, Form: "N"}, "both Values and Form"},
		{Option{Name: "a", Help: "x", Values: []string{"0", "1"}, Default: "2"}, "default refused"},
		{Option{Name: "a=b", Help: "x", Flag: true}, "not a name"},
	} {
		err := Spec{tc.o}.CheckDocs()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
	twice := Spec{documented[1], documented[1]}
	if err := twice.CheckDocs(); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("twice: %v", err)
	}
}
