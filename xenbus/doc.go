// Package xenbus is a xenstore client for Xen domains and dom0 tools, and the
// xenbus device-state helpers split drivers use to connect.
//
// It follows Xen's docs/misc/xenstore.txt and public/io/xs_wire.h for the
// protocol (the codec is in the xswire subpackage), docs/misc/xenstore-ring.txt
// and public/io/xs_wire.h's struct xenstore_domain_interface for the ring
// transport, and public/io/xenbus.h for enum xenbus_state.
//
// A Client runs over a Transport: NewRing inside a domain (the page and
// event channel from HVM_PARAM_STORE_PFN/STORE_EVTCHN), or DialSocket to
// dom0's xenstored. Requests carry their own req_id and may complete out of
// order; one reader goroutine matches replies to callers and hands watch
// events to their Watch. Every call takes a context, so a reply that never
// comes ends in an error at the caller's deadline rather than a hang.
package xenbus

import (
	"errors"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// Errors returned by xenstored, re-exported from xswire so callers can test
// for them with errors.Is without importing the codec. A missing node also
// matches fs.ErrNotExist.
var (
	ErrInval    = xswire.ErrInval
	ErrAccess   = xswire.ErrAccess
	ErrExist    = xswire.ErrExist
	ErrIsDir    = xswire.ErrIsDir
	ErrNoEnt    = xswire.ErrNoEnt
	ErrNoMem    = xswire.ErrNoMem
	ErrNoSpc    = xswire.ErrNoSpc
	ErrIO       = xswire.ErrIO
	ErrNotEmpty = xswire.ErrNotEmpty
	ErrNoSys    = xswire.ErrNoSys
	ErrROFS     = xswire.ErrROFS
	ErrBusy     = xswire.ErrBusy
	ErrAgain    = xswire.ErrAgain
	ErrIsConn   = xswire.ErrIsConn
	Err2Big     = xswire.Err2Big
	ErrPerm     = xswire.ErrPerm

	// ErrProtocol marks a malformed message from xenstored.
	ErrProtocol = xswire.ErrProtocol
)

var (
	// ErrClosed is returned by calls on a Client after Close.
	ErrClosed = errors.New("xenbus: client closed")
	// ErrTxDone is returned by calls on a Tx after its function returned.
	ErrTxDone = errors.New("xenbus: transaction already finished")
	// ErrBadValue marks a node whose value does not have the form asked
	// for (ReadInt on "abc", a state of 12).
	ErrBadValue = errors.New("unexpected xenstore value")
	// ErrUnwatched is a Watch's Err after Unwatch.
	ErrUnwatched = errors.New("xenbus: watch removed")
)

// Perm is one permission entry ("r5"); see xswire.Perm.
type Perm = xswire.Perm

// Access letters of a Perm.
const (
	AccessNone  = xswire.AccessNone
	AccessRead  = xswire.AccessRead
	AccessWrite = xswire.AccessWrite
	AccessBoth  = xswire.AccessBoth
)

// Special watch paths.
const (
	IntroduceDomain = xswire.IntroduceDomain
	ReleaseDomain   = xswire.ReleaseDomain
)
