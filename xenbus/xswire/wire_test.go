package xswire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
)

func header(typ, req, tx, n uint32) []byte {
	b := make([]byte, 0, HeaderSize)
	for _, v := range []uint32{typ, req, tx, n} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func TestMessageRoundTrip(t *testing.T) {
	m := Message{Type: XSWrite, ReqID: 0x01020304, TxID: 7, Payload: []byte("a/b\x00val")}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := append(header(11, 0x01020304, 7, 7), "a/b\x00val"...)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded % x, want % x", b, want)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != m.Type || got.ReqID != m.ReqID || got.TxID != m.TxID || !bytes.Equal(got.Payload, m.Payload) {
		t.Fatalf("decoded %v, want %v", got, m)
	}
	got, err = ReadMessage(bytes.NewReader(b))
	if err != nil || !bytes.Equal(got.Payload, m.Payload) {
		t.Fatalf("ReadMessage: %v, %v", got, err)
	}
}

func TestPayloadLimitBothWays(t *testing.T) {
	ok := Message{Type: XSWrite, Payload: make([]byte, PayloadMax)}
	if _, err := ok.MarshalBinary(); err != nil {
		t.Fatalf("payload of exactly %d bytes refused: %v", PayloadMax, err)
	}
	big := Message{Type: XSWrite, Payload: make([]byte, PayloadMax+1)}
	if _, err := big.MarshalBinary(); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("oversized request: err = %v, want ErrPayloadTooLarge", err)
	}
	if _, err := WritePayload("/a", make([]byte, PayloadMax)); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("oversized write payload: err = %v", err)
	}
	if _, err := WritePayload("/a", make([]byte, PayloadMax-3)); err != nil {
		t.Fatalf("write payload of exactly %d bytes: %v", PayloadMax, err)
	}
	_, err := ParseHeader(header(2, 1, 0, PayloadMax+1))
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "4097") {
		t.Fatalf("reply header claiming 4097 bytes: err = %v", err)
	}
}

func TestMalformedReplies(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated header", header(2, 1, 0, 0)[:10], "truncated header"},
		{"unknown type", header(99, 1, 0, 0), "unknown message type 99"},
		{"removed XS_RESTRICT", header(20, 1, 0, 0), "unknown message type 20"},
		{"XS_INVALID", header(0xffff, 1, 0, 0), "unknown message type"},
		{"too long", header(2, 1, 0, 5000), "5000-byte payload"},
		{"truncated payload", append(header(2, 1, 0, 5), "abc"...), "truncated XS_READ payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadMessage(bytes.NewReader(tc.in))
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want protocol error mentioning %q", err, tc.want)
			}
			if _, err := Unmarshal(tc.in); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Unmarshal err = %v", err)
			}
		})
	}
	if _, err := ReadMessage(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("clean end of stream: err = %v, want io.EOF", err)
	}
	if _, err := Unmarshal(append(header(2, 1, 0, 1), "ab"...)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("trailing bytes: err = %v", err)
	}
}

func TestErrors(t *testing.T) {
	e, err := ParseError([]byte("ENOENT\x00"))
	if err != nil || e != ErrNoEnt {
		t.Fatalf("ParseError(ENOENT) = %v, %v", e, err)
	}
	if !errors.Is(e, fs.ErrNotExist) || errors.Is(e, ErrAgain) {
		t.Fatal("ENOENT should match fs.ErrNotExist and not EAGAIN")
	}
	if !strings.Contains(e.Error(), "ENOENT") {
		t.Fatalf("message %q lost the raw name", e.Error())
	}
	e, err = ParseError([]byte("EQUOTA\x00"))
	if err != nil || e.Name != "EQUOTA" || !strings.Contains(e.Error(), "EQUOTA") {
		t.Fatalf("unknown name: %v, %v", e, err)
	}
	if !errors.Is(e, &Error{Name: "EQUOTA"}) {
		t.Fatal("errors.Is by name failed")
	}
	for _, bad := range []string{"", "\x00", "OK\x00", "E\x00", "Enoent\x00", "EA\x00B\x00"} {
		if _, err := ParseError([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseError(%q) err = %v, want protocol error", bad, err)
		}
	}
	if len(knownErrors) != 16 {
		t.Fatalf("xs_wire.h lists 16 error names, have %d", len(knownErrors))
	}
}

func TestWatchEvent(t *testing.T) {
	p, tok, err := ParseWatchEvent([]byte("/local/domain/1/x\x00tok7\x00"))
	if err != nil || p != "/local/domain/1/x" || tok != "tok7" {
		t.Fatalf("got %q %q %v", p, tok, err)
	}
	for _, bad := range []string{"", "a\x00", "a\x00b", "a\x00b\x00c\x00", "\x00b\x00", "a\x00\x00\x00"} {
		if _, _, err := ParseWatchEvent([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseWatchEvent(%q) err = %v", bad, err)
		}
	}
}

func TestDirectoryAndFields(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil}, {"\x00", nil}, {"a\x00", []string{"a"}}, {"a\x00bc\x00d-1\x00", []string{"a", "bc", "d-1"}},
	} {
		got, err := ParseDirectory([]byte(tc.in))
		if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("ParseDirectory(%q) = %q, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"a", "a\x00b", "a\x00\x00", "a/b\x00"} {
		if _, err := ParseDirectory([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseDirectory(%q) err = %v", bad, err)
		}
	}
}

func TestPerms(t *testing.T) {
	ps, err := ParsePerms([]byte("n0\x00r5\x00b65535\x00w1\x00"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Perm{{AccessNone, 0}, {AccessRead, 5}, {AccessBoth, 65535}, {AccessWrite, 1}}
	if len(ps) != len(want) {
		t.Fatalf("got %v", ps)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Fatalf("entry %d = %v, want %v", i, ps[i], want[i])
		}
	}
	b, err := SetPermsPayload("/a", want)
	if err != nil || string(b) != "/a\x00n0\x00r5\x00b65535\x00w1\x00" {
		t.Fatalf("SetPermsPayload = %q, %v", b, err)
	}
	for _, bad := range []string{"", "x0\x00", "r\x00", "r65536\x00", "r-1\x00", "r+1\x00", "r1"} {
		if _, err := ParsePerms([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParsePerms(%q) err = %v", bad, err)
		}
	}
	if _, err := SetPermsPayload("/a", nil); err == nil {
		t.Error("empty permission list accepted")
	}
	if _, err := SetPermsPayload("/a", []Perm{{'x', 1}}); err == nil {
		t.Error("access letter x accepted")
	}
}

func TestTxIDAndOK(t *testing.T) {
	if id, err := ParseTxID([]byte("42\x00")); err != nil || id != 42 {
		t.Fatalf("ParseTxID = %d, %v", id, err)
	}
	for _, bad := range []string{"", "0\x00", "-1\x00", "x\x00", "4294967296\x00", "1\x002\x00", "+3"} {
		if _, err := ParseTxID([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseTxID(%q) err = %v", bad, err)
		}
	}
	if ParseOK([]byte("OK\x00")) != nil || ParseOK([]byte("OK")) != nil {
		t.Fatal("OK refused")
	}
	if err := ParseOK([]byte("NO\x00")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("ParseOK(NO) = %v", err)
	}
}

func TestValidatePath(t *testing.T) {
	good := []string{"/", "/local/domain/0", "device/vtpm/0/state", "a", "/a-b_c@d", strings.Repeat("a", RelPathMax), "/" + strings.Repeat("a", AbsPathMax-1)}
	for _, p := range good {
		if err := ValidatePath(p); err != nil {
			t.Errorf("ValidatePath(%.20q) = %v", p, err)
		}
	}
	bad := []string{"", "//", "/a//b", "/a/", "a/", "/a b", "/a\x00b", "/ä", "@introduceDomain", strings.Repeat("a", RelPathMax+1), "/" + strings.Repeat("a", AbsPathMax)}
	for _, p := range bad {
		if err := ValidatePath(p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ValidatePath(%.20q) = %v, want ErrInvalidPath", p, err)
		}
	}
	for _, p := range []string{IntroduceDomain, ReleaseDomain, "/local"} {
		if err := ValidateWatchPath(p); err != nil {
			t.Errorf("ValidateWatchPath(%q) = %v", p, err)
		}
	}
	if err := ValidateWatchPath("@other"); err == nil {
		t.Error("unknown special path accepted")
	}
	if _, err := WatchPayload("/a", ""); err == nil {
		t.Error("empty token accepted")
	}
	if b, err := WatchPayload(IntroduceDomain, "t1"); err != nil || string(b) != "@introduceDomain\x00t1\x00" {
		t.Errorf("WatchPayload = %q, %v", b, err)
	}
}

func TestTypeNames(t *testing.T) {
	if XSGetDomainPath.String() != "XS_GET_DOMAIN_PATH" || XSInvalid.String() != "XS_INVALID" || MsgType(20).String() != "XS_type(20)" {
		t.Fatal("type names")
	}
	if _, err := (Message{Type: 20}).MarshalBinary(); err == nil {
		t.Fatal("encoded a removed type")
	}
	if got := DomainPathPayload(7); string(got) != "7\x00" {
		t.Fatalf("DomainPathPayload = %q", got)
	}
}
