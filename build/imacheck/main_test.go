package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"testing"
)

// A line as Linux 6.1 prints it for ima-ng: the listed template hash is
// the SHA-1 of the data parse rebuilds.
func TestParseRebuildsTemplateData(t *testing.T) {
	digest := bytes.Repeat([]byte{0xab}, 32)
	var data []byte
	data = append(data, field(append([]byte("sha256:\x00"), digest...))...)
	data = append(data, field([]byte("/bin/busybox\x00"))...)
	h := sha1.Sum(data)
	line := "10 " + hex.EncodeToString(h[:]) + " ima-ng sha256:" + hex.EncodeToString(digest) + " /bin/busybox"
	e, err := parse(line)
	if err != nil || !bytes.Equal(e.data, data) {
		t.Fatalf("parse = %x, %v", e.data, err)
	}
	sig, err := parse("10 " + hex.EncodeToString(h[:]) + " ima-sig sha256:" + hex.EncodeToString(digest) + " /bin/busybox")
	if err != nil || !bytes.Equal(sig.data, append(data, 0, 0, 0, 0)) {
		t.Fatalf("ima-sig: %x, %v", sig.data, err)
	}
	for _, bad := range []string{"10 zz ima-ng sha256:00 /x", "10 00 ima sha1:00 /x", "10 00 ima-ng nodigest /x", "10 00"} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
	// A violation extends all ones, whatever the data.
	v := entry{pcr: "10", templateHash: make([]byte, 20)}
	want := sha1.Sum(append(make([]byte, 20), bytes.Repeat([]byte{0xff}, 20)...))
	if got := replay(banks[0], []entry{v}); !bytes.Equal(got, want[:]) {
		t.Fatalf("violation replay %x", got)
	}
}
