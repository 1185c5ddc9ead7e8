// Package xswire is the xenstore wire codec: the xsd_sockmsg header, the
// message types and error names of Xen's public/io/xs_wire.h, and the payload
// syntax of docs/misc/xenstore.txt (NUL-separated fields, permissions, watch
// events, paths).
//
// It knows nothing about transports: the same messages travel over the
// xenstore ring page inside a domain and over xenstored's Unix socket in
// dom0. Everything that comes from the peer is validated here, so a
// malformed reply becomes an error wrapping ErrProtocol instead of a wrong
// value or a panic.
package xswire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MsgType is enum xsd_sockmsg_type. Constant names follow the C names
// (XS_READ is XSRead).
type MsgType uint32

const (
	XSControl            MsgType = 0 // XS_CONTROL, formerly XS_DEBUG
	XSDirectory          MsgType = 1
	XSRead               MsgType = 2
	XSGetPerms           MsgType = 3
	XSWatch              MsgType = 4
	XSUnwatch            MsgType = 5
	XSTransactionStart   MsgType = 6
	XSTransactionEnd     MsgType = 7
	XSIntroduce          MsgType = 8
	XSRelease            MsgType = 9
	XSGetDomainPath      MsgType = 10
	XSWrite              MsgType = 11
	XSMkdir              MsgType = 12
	XSRm                 MsgType = 13
	XSSetPerms           MsgType = 14
	XSWatchEvent         MsgType = 15 // server to client only
	XSError              MsgType = 16 // server to client only
	XSIsDomainIntroduced MsgType = 17
	XSResume             MsgType = 18
	XSSetTarget          MsgType = 19
	// 20 was XS_RESTRICT; it was removed and is not a valid type.
	XSResetWatches  MsgType = 21
	XSDirectoryPart MsgType = 22
	XSGetFeature    MsgType = 23
	XSSetFeature    MsgType = 24
	XSGetQuota      MsgType = 25
	XSSetQuota      MsgType = 26
	XSInvalid       MsgType = 0xffff
)

var typeNames = map[MsgType]string{
	XSControl:            "XS_CONTROL",
	XSDirectory:          "XS_DIRECTORY",
	XSRead:               "XS_READ",
	XSGetPerms:           "XS_GET_PERMS",
	XSWatch:              "XS_WATCH",
	XSUnwatch:            "XS_UNWATCH",
	XSTransactionStart:   "XS_TRANSACTION_START",
	XSTransactionEnd:     "XS_TRANSACTION_END",
	XSIntroduce:          "XS_INTRODUCE",
	XSRelease:            "XS_RELEASE",
	XSGetDomainPath:      "XS_GET_DOMAIN_PATH",
	XSWrite:              "XS_WRITE",
	XSMkdir:              "XS_MKDIR",
	XSRm:                 "XS_RM",
	XSSetPerms:           "XS_SET_PERMS",
	XSWatchEvent:         "XS_WATCH_EVENT",
	XSError:              "XS_ERROR",
	XSIsDomainIntroduced: "XS_IS_DOMAIN_INTRODUCED",
	XSResume:             "XS_RESUME",
	XSSetTarget:          "XS_SET_TARGET",
	XSResetWatches:       "XS_RESET_WATCHES",
	XSDirectoryPart:      "XS_DIRECTORY_PART",
	XSGetFeature:         "XS_GET_FEATURE",
	XSSetFeature:         "XS_SET_FEATURE",
	XSGetQuota:           "XS_GET_QUOTA",
	XSSetQuota:           "XS_SET_QUOTA",
}

// Known reports whether t is a message type of xs_wire.h. XS_INVALID and the
// removed XS_RESTRICT are not.
func (t MsgType) Known() bool {
	_, ok := typeNames[t]
	return ok
}

func (t MsgType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if t == XSInvalid {
		return "XS_INVALID"
	}
	return fmt.Sprintf("XS_type(%d)", uint32(t))
}

const (
	// HeaderSize is sizeof(struct xsd_sockmsg).
	HeaderSize = 16
	// PayloadMax is XENSTORE_PAYLOAD_MAX; xenstored drops a connection that
	// sends more, and a reply claiming more is corrupt.
	PayloadMax = 4096
	// MessageMax is the largest encoded message.
	MessageMax = HeaderSize + PayloadMax
)

// Header is struct xsd_sockmsg; on the wire every field is a little-endian
// u32.
type Header struct {
	Type  MsgType
	ReqID uint32 // echoed by xenstored in the reply
	TxID  uint32 // 0 outside a transaction
	Len   uint32 // payload bytes that follow the header
}

// ParseHeader decodes and validates a header received from the peer: it
// must be complete, name a known type and announce at most PayloadMax bytes.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("xswire: truncated header: %d of %d bytes: %w", len(b), HeaderSize, ErrProtocol)
	}
	h := Header{
		Type:  MsgType(binary.LittleEndian.Uint32(b[0:])),
		ReqID: binary.LittleEndian.Uint32(b[4:]),
		TxID:  binary.LittleEndian.Uint32(b[8:]),
		Len:   binary.LittleEndian.Uint32(b[12:]),
	}
	if !h.Type.Known() {
		return h, fmt.Errorf("xswire: header (req_id %d) has unknown message type %d: %w", h.ReqID, uint32(h.Type), ErrProtocol)
	}
	if h.Len > PayloadMax {
		return h, fmt.Errorf("xswire: %v header (req_id %d) claims a %d-byte payload, limit %d: %w", h.Type, h.ReqID, h.Len, PayloadMax, ErrProtocol)
	}
	return h, nil
}

// Message is one xenstore message: a header whose Len is len(Payload).
type Message struct {
	Type    MsgType
	ReqID   uint32
	TxID    uint32
	Payload []byte
}

func (m Message) String() string {
	return fmt.Sprintf("%v req_id=%d tx_id=%d len=%d", m.Type, m.ReqID, m.TxID, len(m.Payload))
}

// Append encodes m after b. It refuses a payload over PayloadMax or an
// unknown type rather than send something xenstored would kill the
// connection for.
func (m Message) Append(b []byte) ([]byte, error) {
	if !m.Type.Known() {
		return b, fmt.Errorf("xswire: refusing to encode message of unknown type %d", uint32(m.Type))
	}
	if len(m.Payload) > PayloadMax {
		return b, fmt.Errorf("xswire: %v payload of %d bytes exceeds %d: %w", m.Type, len(m.Payload), PayloadMax, ErrPayloadTooLarge)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(m.Type))
	b = binary.LittleEndian.AppendUint32(b, m.ReqID)
	b = binary.LittleEndian.AppendUint32(b, m.TxID)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Payload)))
	return append(b, m.Payload...), nil
}

// MarshalBinary encodes m; see Append.
func (m Message) MarshalBinary() ([]byte, error) {
	return m.Append(make([]byte, 0, HeaderSize+len(m.Payload)))
}

// Unmarshal decodes exactly one message occupying all of b.
func Unmarshal(b []byte) (Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Message{}, err
	}
	if got := len(b) - HeaderSize; got != int(h.Len) {
		return Message{}, fmt.Errorf("xswire: %v (req_id %d) header announces %d payload bytes, have %d: %w", h.Type, h.ReqID, h.Len, got, ErrProtocol)
	}
	return Message{Type: h.Type, ReqID: h.ReqID, TxID: h.TxID, Payload: append([]byte(nil), b[HeaderSize:]...)}, nil
}

// ReadMessage reads one message from a byte stream. It returns io.EOF only
// when the stream ends cleanly between messages; a stream that ends inside
// a message, or a bad header, is an error wrapping ErrProtocol, after which
// the stream cannot be resynchronised.
func ReadMessage(r io.Reader) (Message, error) {
	var hb [HeaderSize]byte
	if n, err := io.ReadFull(r, hb[:]); err != nil {
		if err == io.EOF {
			return Message{}, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Message{}, fmt.Errorf("xswire: truncated header: stream ended after %d of %d bytes: %w", n, HeaderSize, ErrProtocol)
		}
		return Message{}, fmt.Errorf("xswire: reading header: %w", err)
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return Message{}, err
	}
	m := Message{Type: h.Type, ReqID: h.ReqID, TxID: h.TxID, Payload: make([]byte, h.Len)}
	if n, err := io.ReadFull(r, m.Payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Message{}, fmt.Errorf("xswire: truncated %v payload (req_id %d): stream ended after %d of %d bytes: %w", h.Type, h.ReqID, n, h.Len, ErrProtocol)
		}
		return Message{}, fmt.Errorf("xswire: reading %v payload: %w", h.Type, err)
	}
	return m, nil
}
