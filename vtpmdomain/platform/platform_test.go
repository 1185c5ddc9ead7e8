package platform

import (
	"errors"
	"testing"
)

func TestCode(t *testing.T) {
	if cc, ok := Code(Marshal(CCPlatformReset)); !ok || cc != CCPlatformReset {
		t.Fatalf("Code(reset) = %#x, %v", cc, ok)
	}
	getRandom := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}
	for name, cmd := range map[string][]byte{
		"ordinary command": getRandom,
		"short":            Marshal(CCPlatformReset)[:9],
		"size mismatch":    append(Marshal(CCPlatformReset), 0),
		"sessions tag":     {0x80, 0x02, 0, 0, 0, 10, 0x20, 0, 0x58, 1},
		"other vendor cc":  Marshal(0x20000001),
		"TPM 1.2 ordinal":  {0, 0xc1, 0, 0, 0, 10, 0x20, 0, 0x58, 1},
	} {
		if _, ok := Code(cmd); ok {
			t.Errorf("%s taken for a platform command", name)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check(CCPlatformReset, Response(RCSuccess)); err != nil {
		t.Fatal(err)
	}
	if err := Check(CCPlatformReset, Response(RCCommandCode)); !errors.Is(err, ErrRefused) {
		t.Fatalf("refusal read as %v", err)
	}
	if err := Check(CCPlatformReset, []byte{0x80, 1, 0, 0}); err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("malformed response read as %v", err)
	}
}
