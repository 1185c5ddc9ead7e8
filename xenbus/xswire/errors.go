package xswire

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
)

var (
	// ErrProtocol marks a malformed message from the peer.
	ErrProtocol = errors.New("xenstore protocol error")
	// ErrPayloadTooLarge marks a request that would exceed PayloadMax.
	ErrPayloadTooLarge = errors.New("xenstore payload too large")
)

// Error is an XS_ERROR reply. xenstored sends the errno name (xsd_errors
// in xs_wire.h), not a number; Name keeps it verbatim so an unexpected name
// is still reported exactly.
type Error struct {
	Name string
}

// The error names of xs_wire.h, in table order. A reply carrying one of them
// decodes to the matching sentinel, so errors.Is(err, ErrNoEnt) works through
// any amount of wrapping.
var (
	ErrInval    = &Error{"EINVAL"}
	ErrAccess   = &Error{"EACCES"}
	ErrExist    = &Error{"EEXIST"}
	ErrIsDir    = &Error{"EISDIR"}
	ErrNoEnt    = &Error{"ENOENT"}
	ErrNoMem    = &Error{"ENOMEM"}
	ErrNoSpc    = &Error{"ENOSPC"}
	ErrIO       = &Error{"EIO"}
	ErrNotEmpty = &Error{"ENOTEMPTY"}
	ErrNoSys    = &Error{"ENOSYS"}
	ErrROFS     = &Error{"EROFS"}
	ErrBusy     = &Error{"EBUSY"}
	ErrAgain    = &Error{"EAGAIN"}
	ErrIsConn   = &Error{"EISCONN"}
	Err2Big     = &Error{"E2BIG"}
	ErrPerm     = &Error{"EPERM"}
)

var knownErrors = []*Error{
	ErrInval, ErrAccess, ErrExist, ErrIsDir, ErrNoEnt, ErrNoMem, ErrNoSpc, ErrIO,
	ErrNotEmpty, ErrNoSys, ErrROFS, ErrBusy, ErrAgain, ErrIsConn, Err2Big, ErrPerm,
}

var errorText = map[string]string{
	"EINVAL":    "invalid argument",
	"EACCES":    "permission denied",
	"EEXIST":    "node exists",
	"EISDIR":    "is a directory",
	"ENOENT":    "no such node",
	"ENOMEM":    "out of memory",
	"ENOSPC":    "no space left / quota exceeded",
	"EIO":       "input/output error",
	"ENOTEMPTY": "directory not empty",
	"ENOSYS":    "operation not supported",
	"EROFS":     "read-only",
	"EBUSY":     "busy",
	"EAGAIN":    "try again (transaction conflict)",
	"EISCONN":   "already connected",
	"E2BIG":     "argument too big",
	"EPERM":     "operation not permitted",
}

func (e *Error) Error() string {
	if t, ok := errorText[e.Name]; ok {
		return "xenstore " + e.Name + ": " + t
	}
	return "xenstore error " + e.Name
}

// Is matches another *Error by name, and the io/fs errors callers check
// for with the standard library (a missing node is fs.ErrNotExist).
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Name == e.Name
	}
	switch e.Name {
	case "ENOENT":
		return target == fs.ErrNotExist
	case "EEXIST":
		return target == fs.ErrExist
	case "EACCES", "EPERM":
		return target == fs.ErrPermission
	}
	return false
}

// ParseError decodes an XS_ERROR payload, "<NAME>\0". A known name yields
// its sentinel; an unknown but well-formed name yields a new *Error; a
// payload that is not an error name is a protocol error.
func ParseError(payload []byte) (*Error, error) {
	name := payload
	if n := len(name); n > 0 && name[n-1] == 0 {
		name = name[:n-1]
	}
	if len(name) < 2 || len(name) > 32 || name[0] != 'E' {
		return nil, fmt.Errorf("xswire: XS_ERROR payload %q is not an error name: %w", clip(payload), ErrProtocol)
	}
	for _, c := range name[1:] {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return nil, fmt.Errorf("xswire: XS_ERROR payload %q is not an error name: %w", clip(payload), ErrProtocol)
		}
	}
	for _, e := range knownErrors {
		if e.Name == string(name) {
			return e, nil
		}
	}
	return &Error{Name: string(name)}, nil
}

// clip shortens peer data quoted in error messages.
func clip(b []byte) []byte {
	const max = 64
	if len(b) > max {
		return append(bytes.Clone(b[:max]), "..."...)
	}
	return b
}
