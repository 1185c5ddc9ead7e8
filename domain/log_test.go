package domain

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoggerLevels(t *testing.T) {
	var b bytes.Buffer
	l := NewLogger(&b, "vtpm", LevelInfo)
	l.Debugf("hidden %d", 1)
	l.Infof("shown %d", 2)
	l.Errorf("bad %s", "thing")
	out := b.String()
	if strings.Contains(out, "hidden") {
		t.Fatalf("debug line shown at info level: %q", out)
	}
	if !strings.Contains(out, "vtpm: shown 2\n") || !strings.Contains(out, "vtpm: error: bad thing\n") {
		t.Fatalf("output %q", out)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Fatal("bad level accepted")
	}
	if lv, _ := ParseLevel("debug"); lv != LevelDebug {
		t.Fatal("debug level")
	}
}
