package main

import (
	"errors"
	"os"
	"testing"
)

// The host's own test binary is an ELF with no board marker: trimming must
// refuse or skip it, never patch.
func TestRefusesForeignImages(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Skip(err)
	}
	_, _, err = trimImage(data)
	if err == nil {
		t.Fatal("a host binary was trimmed")
	}
	if !errors.Is(err, ErrNoBuffer) && err.Error() == "" {
		t.Fatal("empty error")
	}
	if _, _, err := trimImage([]byte("not an elf")); err == nil {
		t.Fatal("garbage accepted")
	}
}
