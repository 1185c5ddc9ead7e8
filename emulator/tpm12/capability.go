package tpm12

import "slices"

// Capability areas, Part 2 §21.1 (TPM_CAPABILITY_AREA).
const (
	capOrd        uint32 = 0x01
	capAlg        uint32 = 0x02
	capPID        uint32 = 0x03
	capFlag       uint32 = 0x04
	capProperty   uint32 = 0x05
	capVersion    uint32 = 0x06
	capKeyHandle  uint32 = 0x07
	capMfr        uint32 = 0x10
	capNVList     uint32 = 0x0D
	capNVIndex    uint32 = 0x11
	capHandle     uint32 = 0x14
	capVersionVal uint32 = 0x1A

	capFlagPermanent uint32 = 0x108
	capFlagVolatile  uint32 = 0x109
)

// capCheckLoaded asks whether a key of the TPM_KEY_PARMS in subCap can
// be loaded now (TPM_CAP_CHECK_LOADED, Part 2 §21.1).
const capCheckLoaded uint32 = 0x08

// Properties of TPM_CAP_PROPERTY, Part 2 §21.2 (TPM_CAP_PROP_*).
const (
	propPCR            uint32 = 0x101
	propDIR            uint32 = 0x102
	propManufacturer   uint32 = 0x103
	propKeys           uint32 = 0x104
	propAuthSess       uint32 = 0x10A
	propTransSess      uint32 = 0x10B
	propCounters       uint32 = 0x10C
	propMaxAuthSess    uint32 = 0x10D
	propMaxTransSess   uint32 = 0x10E
	propMaxCounters    uint32 = 0x10F
	propMaxKeys        uint32 = 0x110
	propOwner          uint32 = 0x111
	propContext        uint32 = 0x112
	propMaxContext     uint32 = 0x113
	propTISTimeout     uint32 = 0x115
	propSessions       uint32 = 0x11D
	propMaxSessions    uint32 = 0x11E
	propDuration       uint32 = 0x120
	propActiveCounter  uint32 = 0x122
	propMaxNVAvailable uint32 = 0x123
	propInputBuffer    uint32 = 0x124
)

// Identification reported by GetCapability. The manufacturer is the
// TPM 2.0 engine's ("XVTP"); the version is TPM 1.2 and this engine's
// firmware 1.0; specLevel 2 and errataRev 3 are rev 116 (Part 2 §21.6).
var (
	manufacturerID = [4]byte{'X', 'V', 'T', 'P'}
	firmware       = version{Major: 1, Minor: 2, RevMajor: 1, RevMinor: 0}
)

const (
	specLevel = 0x0002
	errataRev = 0x03
)

// Timeouts and durations in microseconds (TPM_CAP_PROP_TIS_TIMEOUT,
// TPM_CAP_PROP_DURATION): the TIS defaults for A-D (PC Client TIS
// §11.2.2), and durations an RSA-2048 key generation fits in.
var (
	tisTimeouts = []uint32{750000, 2000000, 750000, 750000}
	durations   = []uint32{2000000, 20000000, 60000000}
)

type getCapabilityIn struct {
	CapArea uint32
	SubCap  []byte
}

func (g *getCapabilityIn) unmarshal(r *reader) {
	g.CapArea = r.u32()
	g.SubCap = r.sized(bufferMax)
}

// subCap32 is the subCap as a UINT32, ok only when it is 4 bytes long.
func (g *getCapabilityIn) subCap32() (uint32, bool) {
	if len(g.SubCap) != 4 {
		return 0, false
	}
	return uint32(g.SubCap[0])<<24 | uint32(g.SubCap[1])<<16 | uint32(g.SubCap[2])<<8 | uint32(g.SubCap[3]), true
}

// getCapability is TPM_GetCapability, Part 3 §7.1. In failure mode only
// the version, manufacturer, timeouts and durations answer (§7.1 action
// 1), so a driver can still identify the TPM.
func (t *TPM) getCapability(_ *call, in *getCapabilityIn) (*sizedOut, error) {
	sub, is32 := in.subCap32()
	if t.failed {
		ok := in.CapArea == capVersion || in.CapArea == capVersionVal ||
			in.CapArea == capProperty && is32 && (sub == propManufacturer || sub == propDuration || sub == propTISTimeout)
		if !ok {
			return nil, rcE(rcFailedSelfTest, "failure mode")
		}
	}
	w := &writer{}
	badMode := rcE(rcBadMode, "capability %#x subCap %x", in.CapArea, in.SubCap)
	switch in.CapArea {
	case capOrd:
		if !is32 {
			return nil, badMode
		}
		w.bool(t.commands[sub] != nil)
	case capAlg:
		if !is32 {
			return nil, badMode
		}
		// The asymmetric algorithms of Sign, Seal, UnSeal and UnBind.
		w.bool(sub == algRSA)
	case capPID:
		if len(in.SubCap) != 2 {
			return nil, badMode
		}
		pid := uint16(in.SubCap[0])<<8 | uint16(in.SubCap[1])
		w.bool(pid == pidOIAP || pid == pidOSAP)
	case capFlag:
		switch {
		case is32 && sub == capFlagPermanent:
			t.ps.Flags.marshal(w)
		case is32 && sub == capFlagVolatile:
			t.stclear.marshal(w)
		default:
			return nil, badMode
		}
	case capProperty:
		if !is32 || !t.property(w, sub) {
			return nil, badMode
		}
	case capVersion:
		// TPM_STRUCT_VER: 1.1.0.0 on every TPM 1.2 (Part 2 §5.1).
		(&version{Major: 1, Minor: 1}).marshal(w)
	case capKeyHandle:
		handleList(t.keyHandles()).marshal(w)
	case capCheckLoaded:
		// As libtpms: an RSA key fits while a slot is free; bytes
		// after the TPM_KEY_PARMS are not looked at.
		var p keyParms
		r := &reader{b: in.SubCap}
		p.unmarshal(r)
		if r.err != nil {
			return nil, r.err
		}
		if r.short {
			return nil, rcE(rcBadParamSize, "TPM_KEY_PARMS")
		}
		w.bool(p.AlgorithmID == algRSA && len(t.keys) < keySlotsMax)
	case capHandle:
		if !is32 {
			return nil, badMode
		}
		switch sub {
		case rtAuth:
			handleList(t.sessionHandles()).marshal(w)
		case rtKey:
			handleList(t.keyHandles()).marshal(w)
		case rtTrans, rtContext:
			handleList{}.marshal(w)
		default:
			return nil, badMode
		}
	case capNVList:
		for _, i := range t.nvIndices() {
			w.u32(i)
		}
	case capNVIndex:
		if !is32 {
			return nil, badMode
		}
		i := t.nvFind(sub)
		if i < 0 {
			return nil, rcE(rcBadIndex, "NV index %#x", sub)
		}
		t.nvPublic(t.ps.NV[i]).marshal(w)
	case capVersionVal:
		(&capVersionInfo{Version: firmware, SpecLevel: specLevel, ErrataRev: errataRev, TPMVendorID: manufacturerID}).marshal(w)
	default:
		return nil, badMode
	}
	return &sizedOut{Data: w.b}, nil
}

// property writes TPM_CAP_PROPERTY sub and reports whether it is one
// this TPM answers.
func (t *TPM) property(w *writer, sub uint32) bool {
	switch sub {
	case propPCR:
		w.u32(pcrCount)
	case propDIR:
		w.u32(1)
	case propManufacturer:
		w.bytes(manufacturerID[:])
	case propKeys:
		w.u32(uint32(keySlotsMax - len(t.keys)))
	case propMaxKeys:
		w.u32(keySlotsMax)
	case propAuthSess, propSessions:
		w.u32(uint32(authSessionsMax - len(t.sessions)))
	case propMaxAuthSess, propMaxSessions:
		w.u32(authSessionsMax)
	case propTransSess, propMaxTransSess, propContext, propMaxContext:
		// No transport sessions or saved contexts yet.
		w.u32(0)
	case propCounters:
		w.u32(t.countersFree())
	case propMaxCounters:
		w.u32(countersMax)
	case propMaxNVAvailable:
		w.u32(uint32(nvSpaceMax - t.nvUsed()))
	case propActiveCounter:
		if t.activeCounter == countIDIllegal {
			w.u32(countIDNull)
		} else {
			w.u32(t.activeCounter)
		}
	case propOwner:
		w.bool(t.ps.Owned)
	case propTISTimeout:
		for _, v := range tisTimeouts {
			w.u32(v)
		}
	case propDuration:
		for _, v := range durations {
			w.u32(v)
		}
	case propInputBuffer:
		w.u32(bufferMax)
	default:
		return false
	}
	return true
}

// sessionHandles lists the loaded authorization sessions in handle
// order.
func (t *TPM) sessionHandles() []uint32 {
	hs := make([]uint32, 0, len(t.sessions))
	for h := range t.sessions {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

// getCapabilityOwnerOut is TPM_GetCapabilityOwner's output: the TPM's
// version (as TPM_CAP_VERSION_VAL reports it) and the two flag sets as
// bitmaps.
type getCapabilityOwnerOut struct {
	Version                         version
	NonVolatileFlags, VolatileFlags uint32
}

func (o *getCapabilityOwnerOut) marshal(w *writer) {
	o.Version.marshal(w)
	w.u32(o.NonVolatileFlags)
	w.u32(o.VolatileFlags)
}

// getCapabilityOwner is TPM_GetCapabilityOwner, Part 3 §7.3: deprecated,
// but TrouSerS' Tspi_TPM_GetStatus asks it (tpm_setenable -s,
// tpm_setactive -s). Bit i of each bitmap is the i-th BOOL of
// TPM_PERMANENT_FLAGS and TPM_STCLEAR_FLAGS in their wire order.
func (t *TPM) getCapabilityOwner(c *call, _ *none) (*getCapabilityOwnerOut, error) {
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	return &getCapabilityOwnerOut{
		Version:          firmware,
		NonVolatileFlags: flagBitmap(t.ps.Flags.marshal),
		VolatileFlags:    flagBitmap(t.stclear.marshal),
	}, nil
}

// flagBitmap turns a marshalled flags structure (a tag, then one BOOL
// octet per flag) into a bitmap.
func flagBitmap(marshal func(*writer)) uint32 {
	var w writer
	marshal(&w)
	var m uint32
	for i, b := range w.b[2:] {
		if b != 0 {
			m |= 1 << i
		}
	}
	return m
}
