package xswire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Request payloads. Each builder validates its arguments and refuses a
// payload over PayloadMax, so a bad request fails here with a clear error
// instead of at xenstored.

// PathPayload is "<path>\0", the payload of XS_READ, XS_MKDIR, XS_RM,
// XS_DIRECTORY and XS_GET_PERMS.
func PathPayload(path string) ([]byte, error) {
	if err := ValidatePath(path); err != nil {
		return nil, err
	}
	return sized(append([]byte(path), 0))
}

// WritePayload is "<path>\0<value>": the value is raw bytes without a
// terminating NUL.
func WritePayload(path string, value []byte) ([]byte, error) {
	if err := ValidatePath(path); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(path)+1+len(value))
	b = append(append(append(b, path...), 0), value...)
	return sized(b)
}

// DirectoryPartPayload is "<path>\0<offset>\0", XS_DIRECTORY_PART's
// request: the node's list of children from byte offset on.
func DirectoryPartPayload(path string, offset int) ([]byte, error) {
	if err := ValidatePath(path); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("xswire: directory part offset %d: %w", offset, ErrProtocol)
	}
	return sized(fmt.Appendf(nil, "%s\x00%d\x00", path, offset))
}

// WatchPayload is "<path>\0<token>\0", the payload of XS_WATCH and
// XS_UNWATCH. The path may be one of the special watch paths.
func WatchPayload(path, token string) ([]byte, error) {
	if err := ValidateWatchPath(path); err != nil {
		return nil, err
	}
	if token == "" || strings.IndexByte(token, 0) >= 0 {
		return nil, fmt.Errorf("xswire: watch token %q must be non-empty and free of NUL bytes", token)
	}
	return sized([]byte(path + "\x00" + token + "\x00"))
}

// SetPermsPayload is "<path>\0<perm>\0<perm>\0..." for XS_SET_PERMS; the
// first entry names the owner and the access of every domain not listed.
func SetPermsPayload(path string, perms []Perm) ([]byte, error) {
	if err := ValidatePath(path); err != nil {
		return nil, err
	}
	if len(perms) == 0 {
		return nil, fmt.Errorf("xswire: set permissions of %q: need at least the owner entry", path)
	}
	b := append([]byte(path), 0)
	for _, p := range perms {
		if !p.Access.valid() {
			return nil, fmt.Errorf("xswire: set permissions of %q: invalid access %q for domain %d", path, byte(p.Access), p.Domid)
		}
		b = append(append(b, p.String()...), 0)
	}
	return sized(b)
}

// DomainPathPayload is "<domid>\0" for XS_GET_DOMAIN_PATH.
func DomainPathPayload(domid uint16) []byte {
	return append(strconv.AppendUint(nil, uint64(domid), 10), 0)
}

// TransactionStartPayload is the empty string XS_TRANSACTION_START takes.
func TransactionStartPayload() []byte { return []byte{0} }

// TransactionEndPayload is "T\0" to commit or "F\0" to abort.
func TransactionEndPayload(commit bool) []byte {
	if commit {
		return []byte("T\x00")
	}
	return []byte("F\x00")
}

func sized(b []byte) ([]byte, error) {
	if len(b) > PayloadMax {
		return nil, fmt.Errorf("xswire: request payload of %d bytes exceeds %d: %w", len(b), PayloadMax, ErrPayloadTooLarge)
	}
	return b, nil
}

// Reply payloads.

// ParseOK checks the "OK\0" acknowledgement of requests that return no
// data. A missing NUL is tolerated; anything else is not.
func ParseOK(payload []byte) error {
	if string(payload) == "OK\x00" || string(payload) == "OK" {
		return nil
	}
	return fmt.Errorf("xswire: expected OK acknowledgement, got %q: %w", clip(payload), ErrProtocol)
}

// SplitFields splits a list of NUL-terminated strings. An empty payload is
// an empty list; a payload whose last field lacks its NUL is malformed.
func SplitFields(payload []byte) ([]string, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	if payload[len(payload)-1] != 0 {
		return nil, fmt.Errorf("xswire: field list %q does not end in NUL: %w", clip(payload), ErrProtocol)
	}
	return strings.Split(string(payload[:len(payload)-1]), "\x00"), nil
}

// ParseDirectory decodes an XS_DIRECTORY reply, "child\0child\0...".
func ParseDirectory(payload []byte) ([]string, error) {
	// Some daemons answer a childless node with a lone NUL.
	if len(payload) == 1 && payload[0] == 0 {
		return nil, nil
	}
	names, err := SplitFields(payload)
	if err != nil {
		return nil, fmt.Errorf("xswire: directory reply: %w", err)
	}
	for _, n := range names {
		if n == "" || strings.IndexByte(n, '/') >= 0 {
			return nil, fmt.Errorf("xswire: directory reply has invalid child name %q: %w", n, ErrProtocol)
		}
	}
	return names, nil
}

// DirectoryPart is one XS_DIRECTORY_PART reply (docs/misc/xenstore.txt):
// "<generation>\0" and the node's children list from the asked offset,
// each name NUL-terminated, the list's end marked by one more NUL.
type DirectoryPart struct {
	// Generation changes whenever the node does: parts of one listing
	// must carry the same one.
	Generation string
	Names      []string
	// Len is how many bytes of the children list this part holds: the
	// next part's offset is the current one plus Len.
	Len int
	// Last is set on the part that reaches the end of the list.
	Last bool
}

// ParseDirectoryPart decodes an XS_DIRECTORY_PART reply.
func ParseDirectoryPart(payload []byte) (DirectoryPart, error) {
	var d DirectoryPart
	bad := func(why string) (DirectoryPart, error) {
		return DirectoryPart{}, fmt.Errorf("xswire: directory part reply %q: %s: %w", clip(payload), why, ErrProtocol)
	}
	i := bytes.IndexByte(payload, 0)
	if i <= 0 {
		return bad("no generation")
	}
	if _, err := strconv.ParseUint(string(payload[:i]), 10, 64); err != nil {
		return bad("generation is not a decimal number")
	}
	d.Generation = string(payload[:i])
	list := payload[i+1:]
	switch {
	case len(list) == 0 || list[len(list)-1] != 0:
		return bad("children list does not end in NUL")
	case len(list) == 1:
		d.Last = true
		return d, nil
	case list[len(list)-2] == 0:
		d.Last = true
		list = list[:len(list)-1]
	}
	d.Len = len(list)
	for _, n := range strings.Split(string(list[:len(list)-1]), "\x00") {
		if n == "" || strings.IndexByte(n, '/') >= 0 {
			return bad(fmt.Sprintf("invalid child name %q", n))
		}
		d.Names = append(d.Names, n)
	}
	return d, nil
}

// ParseString decodes a reply that is one NUL-terminated string, such as
// XS_GET_DOMAIN_PATH's. The NUL is optional; an embedded one is not allowed.
func ParseString(payload []byte) (string, error) {
	s := payload
	if n := len(s); n > 0 && s[n-1] == 0 {
		s = s[:n-1]
	}
	if bytes.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("xswire: expected one string, got %q: %w", clip(payload), ErrProtocol)
	}
	return string(s), nil
}

// ParseTxID decodes an XS_TRANSACTION_START reply: a decimal, non-zero
// transaction id (0 means "no transaction" on the wire).
func ParseTxID(payload []byte) (uint32, error) {
	s, err := ParseString(payload)
	if err != nil {
		return 0, fmt.Errorf("xswire: transaction id: %w", err)
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("xswire: transaction id %q is not a non-zero 32-bit decimal: %w", clip(payload), ErrProtocol)
	}
	return uint32(id), nil
}

// ParseWatchEvent decodes an XS_WATCH_EVENT payload, "<path>\0<token>\0".
// Exactly two NULs, the last one final, are required.
func ParseWatchEvent(payload []byte) (path, token string, err error) {
	if n := bytes.Count(payload, []byte{0}); n != 2 || payload[len(payload)-1] != 0 {
		return "", "", fmt.Errorf("xswire: watch event %q must be path NUL token NUL (found %d NULs): %w", clip(payload), n, ErrProtocol)
	}
	i := bytes.IndexByte(payload, 0)
	path, token = string(payload[:i]), string(payload[i+1:len(payload)-1])
	if path == "" {
		return "", "", fmt.Errorf("xswire: watch event %q has an empty path: %w", clip(payload), ErrProtocol)
	}
	return path, token, nil
}

// Access is the letter of a permission entry.
type Access byte

const (
	AccessNone  Access = 'n'
	AccessRead  Access = 'r'
	AccessWrite Access = 'w'
	AccessBoth  Access = 'b' // read and write
)

func (a Access) valid() bool {
	return a == AccessNone || a == AccessRead || a == AccessWrite || a == AccessBoth
}

// Perm is one permission entry such as "r5". In a list, the first entry is
// the node's owner, whose access letter applies to every domain not listed.
type Perm struct {
	Access Access
	Domid  uint16
}

func (p Perm) String() string {
	return string(p.Access) + strconv.FormatUint(uint64(p.Domid), 10)
}

// ParsePerm decodes one entry such as "b0".
func ParsePerm(s string) (Perm, error) {
	if len(s) < 2 || !Access(s[0]).valid() {
		return Perm{}, fmt.Errorf("xswire: permission %q is not one of n/r/w/b followed by a domid: %w", s, ErrProtocol)
	}
	d, err := strconv.ParseUint(s[1:], 10, 16)
	if err != nil {
		return Perm{}, fmt.Errorf("xswire: permission %q has a bad domid: %w", s, ErrProtocol)
	}
	return Perm{Access: Access(s[0]), Domid: uint16(d)}, nil
}

// ParsePerms decodes an XS_GET_PERMS reply; it must hold at least the owner.
func ParsePerms(payload []byte) ([]Perm, error) {
	fields, err := SplitFields(payload)
	if err != nil {
		return nil, fmt.Errorf("xswire: permissions reply: %w", err)
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("xswire: permissions reply is empty: %w", ErrProtocol)
	}
	perms := make([]Perm, 0, len(fields))
	for _, f := range fields {
		p, err := ParsePerm(f)
		if err != nil {
			return nil, err
		}
		perms = append(perms, p)
	}
	return perms, nil
}

// Paths.

const (
	// AbsPathMax and RelPathMax are XENSTORE_ABS_PATH_MAX and
	// XENSTORE_REL_PATH_MAX.
	AbsPathMax = 3072
	RelPathMax = 2048

	// Special watch paths: fired when a domain is introduced to or
	// released by xenstored.
	IntroduceDomain = "@introduceDomain"
	ReleaseDomain   = "@releaseDomain"
)

// ErrInvalidPath marks a path xenstored would reject.
var ErrInvalidPath = errors.New("invalid xenstore path")

// ValidatePath checks a node path the way xenstored does: absolute ("/...")
// or relative to the caller's /local/domain/<domid>, made of alphanumerics
// and "-/_@", no empty component (no "//", no trailing "/" except the root
// itself), and within AbsPathMax or RelPathMax.
func ValidatePath(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("xswire: path %q %s: %w", clipString(p), why, ErrInvalidPath)
	}
	if p == "" {
		return bad("is empty")
	}
	if p[0] == '/' {
		if len(p) > AbsPathMax {
			return bad(fmt.Sprintf("is %d bytes long, limit %d for absolute paths", len(p), AbsPathMax))
		}
	} else if len(p) > RelPathMax {
		return bad(fmt.Sprintf("is %d bytes long, limit %d for relative paths", len(p), RelPathMax))
	}
	if p[0] == '@' {
		return bad("starts with @, which only special watch paths may")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '/' || c == '_' || c == '@') {
			return bad(fmt.Sprintf("has invalid character %q at offset %d", c, i))
		}
	}
	if strings.Contains(p, "//") {
		return bad("has an empty component (//)")
	}
	if p != "/" && p[len(p)-1] == '/' {
		return bad("ends in /")
	}
	return nil
}

// ValidateWatchPath accepts a node path or one of the special watch paths.
func ValidateWatchPath(p string) error {
	if p == IntroduceDomain || p == ReleaseDomain {
		return nil
	}
	return ValidatePath(p)
}

func clipString(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
