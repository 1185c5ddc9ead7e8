package tpmtis

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
)

// toyTPM answers the handful of commands the tests send, in either family,
// enough for go-tpm's clients to parse the answers. PCR 21 may only be
// extended from locality 2, as in the PC Client profile.
type toyTPM struct {
	family   Family
	pcr20    [24][32]byte
	pcr12    [24][20]byte
	retries  int // answer this many commands with the family's retry code first
	timeouts []uint32
	durs     []uint32
	seen     []uint32 // command codes, in order
	locs     []int    // locality of each command
}

func rsp(tag uint16, rc uint32, body ...byte) []byte {
	b := make([]byte, 10, 10+len(body))
	binary.BigEndian.PutUint16(b, tag)
	binary.BigEndian.PutUint32(b[2:], uint32(10+len(body)))
	binary.BigEndian.PutUint32(b[6:], rc)
	return append(b, body...)
}

func (t *toyTPM) handle(loc int, cmd []byte) []byte {
	tag := binary.BigEndian.Uint16(cmd)
	cc := binary.BigEndian.Uint32(cmd[6:])
	t.seen = append(t.seen, cc)
	t.locs = append(t.locs, loc)
	if t.family == Family12 {
		return t.handle12(loc, tag, cc, cmd)
	}
	return t.handle20(loc, tag, cc, cmd)
}

func (t *toyTPM) handle20(loc int, tag uint16, cc uint32, cmd []byte) []byte {
	if tag != 0x8001 && tag != 0x8002 {
		return rsp(0x8001, 0x01E) // TPM_RC_BAD_TAG
	}
	if t.retries > 0 {
		t.retries--
		return rsp(0x8001, 0x922) // TPM_RC_RETRY
	}
	switch cc {
	case 0x17A: // GetCapability: one TPM property
		body := []byte{0}                                 // moreData
		body = binary.BigEndian.AppendUint32(body, 6)     // TPM_CAP_TPM_PROPERTIES
		body = binary.BigEndian.AppendUint32(body, 1)     // count
		body = binary.BigEndian.AppendUint32(body, 0x129) // TPM_PT_TOTAL_COMMANDS
		body = binary.BigEndian.AppendUint32(body, 0x70)  // value
		return rsp(0x8001, 0, body...)
	case 0x17B: // GetRandom(bytesRequested)
		n := int(binary.BigEndian.Uint16(cmd[10:]))
		body := binary.BigEndian.AppendUint16(nil, uint16(n))
		for i := range n {
			body = append(body, byte(i*7+1))
		}
		return rsp(0x8001, 0, body...)
	case 0x182: // PCR_Extend(pcrHandle) with a password session and one SHA-256 digest
		h := binary.BigEndian.Uint32(cmd[10:])
		if h >= 24 {
			return rsp(0x8001, 0x18B) // TPM_RC_VALUE + handle 1
		}
		if h == 21 && loc != 2 {
			return rsp(0x8001, 0x907) // TPM_RC_LOCALITY
		}
		authSize := binary.BigEndian.Uint32(cmd[14:])
		p := cmd[18+authSize:]
		// TPML_DIGEST_VALUES: count, then (alg, digest)...
		if len(p) >= 6+32 && binary.BigEndian.Uint16(p[4:]) == 0x000B {
			s := sha256.New()
			s.Write(t.pcr20[h][:])
			s.Write(p[6 : 6+32])
			copy(t.pcr20[h][:], s.Sum(nil))
		}
		// Response: parameterSize 0, then a password-session ack
		// (empty nonce, continueSession, empty HMAC).
		return rsp(0x8002, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0)
	}
	return rsp(0x8001, 0x143) // TPM_RC_COMMAND_CODE
}

func (t *toyTPM) handle12(loc int, tag uint16, cc uint32, cmd []byte) []byte {
	if tag != 0x00C1 {
		return rsp(0x00C4, 0x1E) // TPM_BADTAG
	}
	if t.retries > 0 {
		t.retries--
		return rsp(0x00C4, 0x800) // TPM_RETRY
	}
	switch cc {
	case 0x65: // GetCapability
		capArea := binary.BigEndian.Uint32(cmd[10:])
		sub := binary.BigEndian.Uint32(cmd[18:])
		var vals []uint32
		switch {
		case capArea == 5 && sub == 0x115 && t.timeouts != nil:
			vals = t.timeouts
		case capArea == 5 && sub == 0x120 && t.durs != nil:
			vals = t.durs
		default:
			return rsp(0x00C4, 0x2C) // TPM_BAD_MODE
		}
		body := binary.BigEndian.AppendUint32(nil, uint32(4*len(vals)))
		for _, v := range vals {
			body = binary.BigEndian.AppendUint32(body, v)
		}
		return rsp(0x00C4, 0, body...)
	case 0x46: // GetRandom
		n := binary.BigEndian.Uint32(cmd[10:])
		body := binary.BigEndian.AppendUint32(nil, n)
		for i := range int(n) {
			body = append(body, byte(i*3+2))
		}
		return rsp(0x00C4, 0, body...)
	case 0x14: // Extend(pcrNum, inDigest)
		h := binary.BigEndian.Uint32(cmd[10:])
		if h >= 24 {
			return rsp(0x00C4, 0x02) // TPM_BADINDEX
		}
		if h == 21 && loc != 2 {
			return rsp(0x00C4, 0x3D) // TPM_BAD_LOCALITY
		}
		s := sha1.New()
		s.Write(t.pcr12[h][:])
		s.Write(cmd[14:34])
		copy(t.pcr12[h][:], s.Sum(nil))
		return rsp(0x00C4, 0, t.pcr12[h][:]...)
	case 0x15: // PcrRead
		h := binary.BigEndian.Uint32(cmd[10:])
		if h >= 24 {
			return rsp(0x00C4, 0x02)
		}
		return rsp(0x00C4, 0, t.pcr12[h][:]...)
	}
	return rsp(0x00C4, 0x0A) // TPM_BAD_ORDINAL
}
