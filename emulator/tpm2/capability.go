package tpm2

import (
	"sort"

	gt "github.com/google/go-tpm/tpm2"
)

// GetCapability and TestParms, Part 3 §30; property tags and values from
// Part 2 §6.13 (TPM_PT) and §8 (TPMA_*).

// Capabilities, Part 2 §6.12.
const (
	capAlgs          = 0
	capHandles       = 1
	capCommands      = 2
	capPPCommands    = 3
	capAuditCommands = 4
	capPCRs          = 5
	capTPMProperties = 6
	capPCRProperties = 7
	capECCCurves     = 8
	capAuthPolicies  = 9
	capACT           = 10
)

// Identification reported in the fixed properties.
const (
	specRevision     = 159 // rev 1.59
	specDayOfYear    = 25
	specYear         = 2019
	manufacturerID   = 0x58565450 // "XVTP"
	vendorString1    = 0x78656e76 // "xenv"
	vendorString2    = 0x74706d00 // "tpm\0"
	firmwareVersion1 = 0x00010000
	maxCapBuffer     = 1024
)

// TPMA_ALGORITHM bits, Part 2 §8.2.
const (
	aaAsymmetric = 1 << 0
	aaSymmetric  = 1 << 1
	aaHash       = 1 << 2
	aaObject     = 1 << 3
	aaSigning    = 1 << 8
	aaEncrypting = 1 << 9
	aaMethod     = 1 << 10
)

var implementedAlgs = []struct {
	alg   gt.TPMAlgID
	attrs uint32
}{
	{gt.TPMAlgRSA, aaAsymmetric | aaObject},
	{gt.TPMAlgSHA1, aaHash},
	{gt.TPMAlgHMAC, aaHash | aaSigning},
	{gt.TPMAlgAES, aaSymmetric},
	{gt.TPMAlgMGF1, aaHash | aaMethod},
	{gt.TPMAlgKeyedHash, aaHash | aaObject},
	{gt.TPMAlgXOR, aaSymmetric | aaHash},
	{gt.TPMAlgSHA256, aaHash},
	{gt.TPMAlgSHA384, aaHash},
	{gt.TPMAlgSHA512, aaHash},
	{gt.TPMAlgNull, 0},
	{gt.TPMAlgRSASSA, aaAsymmetric | aaSigning},
	{gt.TPMAlgRSAES, aaAsymmetric | aaEncrypting},
	{gt.TPMAlgRSAPSS, aaAsymmetric | aaSigning},
	{gt.TPMAlgOAEP, aaAsymmetric | aaEncrypting},
	{gt.TPMAlgECDSA, aaAsymmetric | aaSigning},
	{gt.TPMAlgECDH, aaAsymmetric | aaMethod},
	{gt.TPMAlgKDF1SP800108, aaHash | aaMethod},
	{gt.TPMAlgECC, aaAsymmetric | aaObject},
	{gt.TPMAlgSymCipher, aaObject},
	{gt.TPMAlgCTR, aaSymmetric | aaEncrypting},
	{gt.TPMAlgOFB, aaSymmetric | aaEncrypting},
	{gt.TPMAlgCBC, aaSymmetric | aaEncrypting},
	{gt.TPMAlgCFB, aaSymmetric | aaEncrypting},
	{gt.TPMAlgECB, aaSymmetric | aaEncrypting},
}

var implementedCurves = []gt.TPMECCCurve{gt.TPMECCNistP256, gt.TPMECCNistP384, gt.TPMECCNistP521}

func hashSupported(a gt.TPMIAlgHash) bool {
	_, ok := pcrAlgs[gt.TPMAlgID(a)]
	return ok
}

type taggedProp struct{ tag, val uint32 }

func (t *TPM) properties() []taggedProp {
	nCmds := uint32(len(commandTable))
	var perm uint32
	if len(t.ps.OwnerAuth) > 0 {
		perm |= 1 << 0
	}
	if len(t.ps.EndorsementAuth) > 0 {
		perm |= 1 << 1
	}
	if len(t.ps.LockoutAuth) > 0 {
		perm |= 1 << 2
	}
	if t.ps.DisableClear {
		perm |= 1 << 8
	}
	t.daRecover()
	if t.ps.FailedTries >= t.ps.MaxTries {
		perm |= 1 << 9
	}
	perm |= 1 << 10 // tpmGeneratedEPS
	var stc uint32
	if t.phEnable {
		stc |= 1 << 0
	}
	if t.ps.ShEnable {
		stc |= 1 << 1
	}
	if t.ps.EhEnable {
		stc |= 1 << 2
	}
	if t.phEnableNV {
		stc |= 1 << 3
	}
	loaded := uint32(0)
	for _, s := range t.sessions {
		if !s.saved {
			loaded++
		}
	}
	return []taggedProp{
		{0x100, 0x322E3000}, // TPM_PT_FAMILY_INDICATOR "2.0"
		{0x101, 0},
		{0x102, specRevision},
		{0x103, specDayOfYear},
		{0x104, specYear},
		{0x105, manufacturerID},
		{0x106, vendorString1},
		{0x107, vendorString2},
		{0x108, 0},
		{0x109, 0},
		{0x10A, 0},
		{0x10B, firmwareVersion1},
		{0x10C, 0},
		{0x10D, maxInputBuffer},
		{0x10E, loadedObjectsMax},
		{0x10F, persistentMax},
		{0x110, activeSessionsMax},
		{0x111, activeSessionsMax},
		{0x112, pcrCount},
		{0x113, pcrSelectSize},
		{0x114, 0xFFFF},
		{0x116, 0},
		{0x117, maxNVBuffer * 2},
		{0x118, 0},
		{0x119, 1000},
		{0x11A, uint32(gt.TPMAlgSHA256)},
		{0x11B, uint32(gt.TPMAlgAES)},
		{0x11C, 256},
		{0x11D, 255},
		{0x11E, maxCommandSize},
		{0x11F, maxResponseSize},
		{0x120, maxDigestBytes},
		{0x121, maxResponseSize},
		{0x122, 512},
		{0x123, 1}, // TPM_PS_PC
		{0x124, 0},
		{0x125, 0x105},
		{0x126, 0},
		{0x127, 0},
		{0x128, 0},
		{0x129, nCmds},
		{0x12A, nCmds},
		{0x12B, 0},
		{0x12C, maxNVBuffer},
		{0x12D, 0},
		{0x12E, maxCapBuffer},
		{0x200, perm},
		{0x201, stc},
		{0x202, uint32(len(t.ps.nv))},
		{0x203, loaded},
		{0x204, activeSessionsMax - uint32(len(t.sessions))},
		{0x205, uint32(len(t.sessions)) - loaded},
		{0x206, activeSessionsMax - uint32(len(t.sessions))},
		{0x207, loadedObjectsMax - uint32(len(t.objects))},
		{0x208, uint32(len(t.ps.persistent))},
		{0x209, persistentMax - uint32(len(t.ps.persistent))},
		{0x20A, t.nvCounters()},
		{0x20B, nvIndexMax - uint32(len(t.ps.nv))},
		{0x20C, 0},
		{0x20D, uint32(len(implementedCurves))},
		{0x20E, t.ps.FailedTries},
		{0x20F, t.ps.MaxTries},
		{0x210, t.ps.RecoveryTime},
		{0x211, t.ps.LockoutRecovery},
		{0x212, 0},
		{0x213, 0},
		{0x214, 0},
	}
}

// handleList returns the handles of the type of start, from start on.
func (t *TPM) handleList(start uint32) []uint32 {
	var hs []uint32
	switch start >> 24 {
	case htPCR:
		for i := uint32(0); i < pcrCount; i++ {
			hs = append(hs, i)
		}
	case htNVIndex:
		for h := range t.ps.nv {
			hs = append(hs, h)
		}
	case htHMAC, htPolicy:
		// TPM_HT_LOADED_SESSION and TPM_HT_SAVED_SESSION (Part 2 §7.2):
		// the capability lists loaded or saved sessions of both types.
		saved := start>>24 == htPolicy
		for h, s := range t.sessions {
			if s.saved == saved {
				hs = append(hs, h&0x00FFFFFF|start&0xFF000000)
			}
		}
	case htPermanent:
		hs = []uint32{rhOwner, rhNull, rsPW, rhLockout, rhEndorsement, rhPlatform, rhPlatformNV}
	case htTransient:
		for h := range t.objects {
			hs = append(hs, h)
		}
	case htPersistent:
		for h := range t.ps.persistent {
			hs = append(hs, h)
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	out := hs[:0]
	for _, h := range hs {
		if h >= start {
			out = append(out, h)
		}
	}
	return out
}

func pcrBitmap(fn func(i uint32) bool) []byte {
	b := make([]byte, pcrSelectSize)
	for i := uint32(0); i < pcrCount; i++ {
		if fn(i) {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

// page cuts items (each already encoded) to at most count entries,
// reporting moreData, and frames them as a TPMS_CAPABILITY_DATA.
func page(capability uint32, items [][]byte, count uint32) []byte {
	more := byte(0)
	if uint32(len(items)) > count {
		items, more = items[:count], 1
	}
	b := []byte{more}
	b = append(b, u32(capability)...)
	b = append(b, u32(uint32(len(items)))...)
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func (t *TPM) getCapability(capability, property, count uint32) ([]byte, error) {
	var items [][]byte
	maxItems := uint32(maxCapBuffer / 4)
	switch capability {
	case capAlgs:
		for _, a := range implementedAlgs {
			if uint32(a.alg) >= property {
				items = append(items, append(u16(uint16(a.alg)), u32(a.attrs)...))
			}
		}
		maxItems = maxCapBuffer / 6
	case capHandles:
		for _, h := range t.handleList(property) {
			items = append(items, u32(h))
		}
	case capCommands:
		for _, cc := range implementedCommands() {
			if cc < property {
				continue
			}
			d := commandTable[cc]
			a := cc&0xFFFF | uint32(d.nHandles)<<25
			if d.rspHandle {
				a |= 1 << 28
			}
			if d.nv {
				a |= 1 << 22
			}
			items = append(items, u32(a))
		}
	case capPPCommands, capAuditCommands:
		// No command needs physical presence; command audit is not
		// implemented, so the audit list is empty.
	case capPCRs:
		var b []byte
		n := uint32(0)
		for _, alg := range pcrAlgOrder {
			allocated := t.pcr.banks[alg] != nil
			b = append(b, u16(uint16(alg))...)
			b = append(b, pcrSelectSize)
			b = append(b, pcrBitmap(func(uint32) bool { return allocated })...)
			n++
		}
		return append(append([]byte{0}, u32(capPCRs)...), append(u32(n), b...)...), nil
	case capTPMProperties:
		for _, p := range t.properties() {
			if p.tag >= property {
				items = append(items, append(u32(p.tag), u32(p.val)...))
			}
		}
		maxItems = maxCapBuffer / 8
	case capPCRProperties:
		tags := []struct {
			tag uint32
			fn  func(i uint32) bool
		}{
			{0x00, func(i uint32) bool { return true }},
		}
		for l := uint8(0); l <= 4; l++ {
			bit := localityBit(l)
			tags = append(tags,
				struct {
					tag uint32
					fn  func(i uint32) bool
				}{uint32(1 + 2*l), func(i uint32) bool { return pcrExtendLocalities(i)&bit != 0 }},
				struct {
					tag uint32
					fn  func(i uint32) bool
				}{uint32(2 + 2*l), func(i uint32) bool { return pcrResetLocalities(i)&bit != 0 }})
		}
		tags = append(tags,
			struct {
				tag uint32
				fn  func(i uint32) bool
			}{0x11, func(i uint32) bool { return false }},
			struct {
				tag uint32
				fn  func(i uint32) bool
			}{0x12, func(i uint32) bool { return i >= 17 && i <= 22 }})
		for _, tg := range tags {
			if tg.tag >= property {
				it := append(u32(tg.tag), pcrSelectSize)
				items = append(items, append(it, pcrBitmap(tg.fn)...))
			}
		}
	case capECCCurves:
		for _, c := range implementedCurves {
			if uint32(c) >= property {
				items = append(items, u16(uint16(c)))
			}
		}
	case capAuthPolicies:
		for _, p := range []struct {
			h      uint32
			alg    uint16
			digest []byte
		}{
			{rhOwner, t.ps.OwnerPolicyAlg, t.ps.OwnerPolicy},
			{rhLockout, t.ps.LockoutPolicyAlg, t.ps.LockoutPolicy},
			{rhEndorsement, t.ps.EndorsementPolicyAlg, t.ps.EndorsementPolicy},
			{rhPlatform, t.ps.PlatformPolicyAlg, t.ps.PlatformPolicy},
		} {
			if p.h < property {
				continue
			}
			alg := p.alg
			if len(p.digest) == 0 {
				alg = uint16(gt.TPMAlgNull)
			}
			it := append(u32(p.h), u16(alg)...)
			items = append(items, append(it, p.digest...))
		}
	case capACT:
		// No Authenticated Countdown Timers.
	default:
		return nil, rcP(rcValue, 1, "capability 0x%x", capability)
	}
	if count > maxItems {
		count = maxItems
	}
	return page(capability, items, count), nil
}

// getCapabilityCommand is TPM2_GetCapability, Part 3 §30.2.
func (t *TPM) getCapabilityCommand(c *call, cmd *gt.GetCapability) (*gt.GetCapabilityResponse, error) {
	b, err := t.getCapability(uint32(cmd.Capability), cmd.Property, cmd.PropertyCount)
	if err != nil {
		return nil, err
	}
	// getCapability builds the list item by item, so that a page is cut
	// at maxCapBuffer whatever the items' type, and go-tpm reads it back.
	data, err := gt.Unmarshal[gt.TPMSCapabilityData](b[1:])
	if err != nil {
		return nil, rcE(rcFailure, "capability data: %v", err)
	}
	return &gt.GetCapabilityResponse{MoreData: b[0] == 1, CapabilityData: *data}, nil
}

// testParms is TPM2_TestParms, Part 3 §30.3.
func (t *TPM) testParms(c *call, cmd *gt.TestParms) (*gt.TestParmsResponse, error) {
	return nil, checkPublicParms(cmd.Parameters.Type, &cmd.Parameters.Parameters, 1)
}
