package tpmtis

import (
	"fmt"
	"time"
)

// probe2 is TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES, TPM_PT_TOTAL_COMMANDS,
// 1), the command Linux uses to tell the families apart: a TPM 2.0 answers
// with tag TPM_ST_NO_SESSIONS whatever its state (even before Startup), a
// TPM 1.2 rejects the unknown tag with TPM_TAG_RSP_COMMAND.
var probe2 = []byte{
	0x80, 0x01, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x01, 0x7A,
	0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0x29, 0x00, 0x00, 0x00, 0x01,
}

const (
	tagRspCommand12 = 0x00C4 // TPM_TAG_RSP_COMMAND
	tagNoSessions20 = 0x8001 // TPM_ST_NO_SESSIONS
	tagSessions20   = 0x8002 // TPM_ST_SESSIONS

	capProperty12     = 5     // TPM_CAP_PROPERTY
	capPropTISTimeout = 0x115 // TPM_CAP_PROP_TIS_TIMEOUT: A, B, C, D in µs
	capPropDuration   = 0x120 // TPM_CAP_PROP_DURATION: short, medium, long in µs
)

// probeDuration bounds the probe: both families answer it at once.
const probeDuration = 2 * time.Second

func (t *TPM) identify() error {
	acc := t.read8(regAccess)
	didvid := t.read32(regDIDVID)
	if acc == 0xFF || didvid == 0xFFFFFFFF {
		return fmt.Errorf("%w: TPM_ACCESS=0x%02x TPM_DID_VID=0x%08x at locality %d", ErrNoTPM, acc, didvid, t.cfg.Locality)
	}
	// tpmRegValidSts says the other ACCESS bits mean something; a TPM
	// still coming out of reset may take up to timeout A to set it.
	start := t.clk.Now()
	var pause time.Duration
	for acc&accessRegValidSts == 0 {
		if t.clk.Now().Sub(start) >= t.timeouts.A {
			return fmt.Errorf("%w: TPM_ACCESS.tpmRegValidSts not set within %v (0x%02x)", ErrNoTPM, t.timeouts.A, acc)
		}
		t.pause(start, &pause)
		acc = t.read8(regAccess)
	}
	info := Info{
		VendorID:       uint16(didvid),
		DeviceID:       uint16(didvid >> 16),
		RevisionID:     t.read8(regRID),
		IntfCapability: t.read32(regIntfCap),
		InterfaceID:    t.read32(regInterface),
		Locality:       t.cfg.Locality,
	}
	info.InterfaceVersion = uint8(info.IntfCapability>>intfVersionShift) & intfVersionMask
	switch info.InterfaceVersion {
	case intfVersionTIS12, intfVersionTIS13:
		info.RegisterFamily = Family12
	case intfVersionPTPFIF:
		info.RegisterFamily = Family20
	}
	if info.RegisterFamily == Family20 && info.InterfaceID&ifTypeMask == ifTypeCRB {
		return fmt.Errorf("%w: TPM_INTERFACE_ID=0x%08x selects CRB", ErrUnsupportedIntf, info.InterfaceID)
	}

	rsp, err := t.transmit(probe2, probeDuration)
	if err != nil {
		return fmt.Errorf("tpmtis: family probe: %w", err)
	}
	switch tag := be16(rsp); tag {
	case tagNoSessions20, tagSessions20:
		info.Family = Family20
	case tagRspCommand12:
		info.Family = Family12
	default:
		return fmt.Errorf("%w: family probe answered tag 0x%04x", ErrBadResponse, tag)
	}

	switch info.Family {
	case Family20:
		t.timeouts, t.durations = TPM2Timeouts, TPM2Durations
	case Family12:
		t.timeouts, t.durations = TPM12Timeouts, TPM12Durations
		info.ReportedTimings = t.readTimings12()
	}
	if t.cfg.Timeouts != nil {
		t.timeouts = *t.cfg.Timeouts
	}
	if t.cfg.Durations != nil {
		t.durations = *t.cfg.Durations
	}
	info.Timeouts, info.Durations = t.timeouts, t.durations
	t.info = info
	return nil
}

// readTimings12 asks a TPM 1.2 for its timeouts and durations (TPM Main
// Part 2, TPM_CAP_PROP_TIS_TIMEOUT / TPM_CAP_PROP_DURATION). A TPM that
// cannot answer yet (not started) keeps the TIS defaults. Reported values
// only ever lengthen the defaults: some parts report milliseconds where
// microseconds are due, or values too small to be true.
func (t *TPM) readTimings12() bool {
	to, ok1 := t.getCapProp12(capPropTISTimeout, 4)
	if ok1 {
		unit := time.Microsecond
		if allBelow(to, 1000) { // milliseconds, not microseconds
			unit = time.Millisecond
		}
		t.timeouts = Timeouts{
			A: atLeast(to[0], unit, TPM12Timeouts.A),
			B: atLeast(to[1], unit, TPM12Timeouts.B),
			C: atLeast(to[2], unit, TPM12Timeouts.C),
			D: atLeast(to[3], unit, TPM12Timeouts.D),
		}
	}
	du, ok2 := t.getCapProp12(capPropDuration, 3)
	if ok2 {
		unit := time.Microsecond
		if du[0] != 0 && du[0] < 10000 { // short < 10 ms: reported in ms
			unit = time.Millisecond
		}
		d := TPM12Durations
		d.Short = atLeast(du[0], unit, d.Short)
		d.Medium = atLeast(du[1], unit, d.Medium)
		d.Long = atLeast(du[2], unit, d.Long)
		d.LongLong = max(d.LongLong, d.Long)
		t.durations = d
	}
	return ok1 || ok2
}

func allBelow(v []uint32, limit uint32) bool {
	for _, x := range v {
		if x >= limit {
			return false
		}
	}
	return true
}

// atLeast converts a reported value (at most 2^32 ms, which fits a
// Duration) and applies the floor.
func atLeast(v uint32, unit, floor time.Duration) time.Duration {
	return max(time.Duration(v)*unit, floor)
}

// getCapProp12 runs TPM_GetCapability(TPM_CAP_PROPERTY, prop) and returns n
// big-endian uint32 values from the answer.
func (t *TPM) getCapProp12(prop uint32, n int) ([]uint32, bool) {
	cmd := []byte{
		0x00, 0xC1, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x65,
		0x00, 0x00, 0x00, capProperty12, 0x00, 0x00, 0x00, 0x04,
		byte(prop >> 24), byte(prop >> 16), byte(prop >> 8), byte(prop),
	}
	rsp, err := t.transmit(cmd, t.durations.Short)
	if err != nil || len(rsp) < headerSize+4 || be32(rsp[6:10]) != 0 {
		return nil, false
	}
	size := int(be32(rsp[headerSize:]))
	body := rsp[headerSize+4:]
	if size < 4*n || len(body) < 4*n {
		return nil, false
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = be32(body[4*i:])
	}
	return v, true
}
