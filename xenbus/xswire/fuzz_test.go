package xswire

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadMessage feeds arbitrary byte streams to the stream decoder: it must
// never panic, must bound what it allocates by PayloadMax, and whatever it
// accepts must re-encode to the bytes it consumed.
func FuzzReadMessage(f *testing.F) {
	f.Add(append(header(2, 1, 0, 3), "abc"...))
	f.Add(append(header(15, 0, 0, 8), "/a/b\x00tok\x00"...))
	f.Add(append(header(16, 9, 0, 7), "ENOENT\x00"...))
	f.Add(header(2, 1, 0, 0xffffffff))
	f.Add(header(20, 1, 0, 0))
	f.Add(header(2, 1, 0, 0)[:7])
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			before := r.Len()
			m, err := ReadMessage(r)
			if err != nil {
				return
			}
			if len(m.Payload) > PayloadMax {
				t.Fatalf("accepted %d-byte payload", len(m.Payload))
			}
			enc, err := m.MarshalBinary()
			if err != nil {
				t.Fatalf("accepted message does not re-encode: %v", err)
			}
			consumed := b[len(b)-before : len(b)-r.Len()]
			if !bytes.Equal(enc, consumed) {
				t.Fatalf("re-encoding % x differs from input % x", enc, consumed)
			}
		}
	})
}

// FuzzReplyPayloads runs every reply-payload parser over the same input:
// no panics, and anything accepted survives a round trip through the
// matching builder.
func FuzzReplyPayloads(f *testing.F) {
	for _, s := range []string{"", "\x00", "OK\x00", "ENOENT\x00", "EAGAIN", "E2BIG\x00", "a\x00b\x00",
		"/local/domain/3/x\x00token\x00", "n0\x00r5\x00", "b65535\x00", "r65536\x00", "17\x00", "0\x00", "x\x00\x00", "7\x00a\x00bc\x00\x00", "3\x00\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := ParseError(b); err == nil && e.Error() == "" {
			t.Fatal("empty error text")
		}
		if p, tok, err := ParseWatchEvent(b); err == nil {
			if got := p + "\x00" + tok + "\x00"; got != string(b) {
				t.Fatalf("watch event %q re-encodes as %q", b, got)
			}
		}
		if names, err := ParseDirectory(b); err == nil {
			for _, n := range names {
				if n == "" {
					t.Fatal("empty child name accepted")
				}
			}
		}
		if d, err := ParseDirectoryPart(b); err == nil {
			n := 0
			for _, name := range d.Names {
				if name == "" {
					t.Fatal("empty child name accepted in a directory part")
				}
				n += len(name) + 1
			}
			if n != d.Len {
				t.Fatalf("directory part %q: Len %d, names take %d bytes", b, d.Len, n)
			}
		}
		if perms, err := ParsePerms(b); err == nil {
			enc, err := SetPermsPayload("/p", perms)
			if err != nil {
				t.Fatalf("accepted perms %v do not re-encode: %v", perms, err)
			}
			if again, err := ParsePerms(enc[3:]); err != nil || len(again) != len(perms) {
				t.Fatalf("perms round trip: %v, %v", again, err)
			}
		}
		if id, err := ParseTxID(b); err == nil && id == 0 {
			t.Fatal("transaction id 0 accepted")
		}
		_ = ParseOK(b)
		_, _ = ParseString(b)
		_, _ = SplitFields(b)
	})
}

// FuzzValidatePath checks that an accepted path also builds every request
// payload, and that rejections carry ErrInvalidPath.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"/", "/local/domain/0/data", "device/vtpm/0", "//", "/a/", "@releaseDomain", "/a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidatePath(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("rejection %v lacks ErrInvalidPath", err)
			}
			return
		}
		if _, err := PathPayload(p); err != nil {
			t.Fatalf("valid path %q refused by PathPayload: %v", p, err)
		}
		if _, err := WatchPayload(p, "t"); err != nil {
			t.Fatalf("valid path %q refused by WatchPayload: %v", p, err)
		}
	})
}
