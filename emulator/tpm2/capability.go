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

// implementedAlgs are the algorithms with their TPMA_ALGORITHM (Part 2
// §8.2), in TPM_ALG_ID order.
var implementedAlgs = []gt.TPMSAlgProperty{
	{Alg: gt.TPMAlgRSA, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Object: true}},
	{Alg: gt.TPMAlgSHA1, AlgProperties: gt.TPMAAlgorithm{Hash: true}},
	{Alg: gt.TPMAlgHMAC, AlgProperties: gt.TPMAAlgorithm{Hash: true, Signing: true}},
	{Alg: gt.TPMAlgAES, AlgProperties: gt.TPMAAlgorithm{Symmetric: true}},
	{Alg: gt.TPMAlgMGF1, AlgProperties: gt.TPMAAlgorithm{Hash: true, Method: true}},
	// A keyed-hash object signs (HMAC) and encrypts (XOR), as the
	// reference implementation and libtpms report it; tools that filter
	// by attributes rely on it.
	{Alg: gt.TPMAlgKeyedHash, AlgProperties: gt.TPMAAlgorithm{Hash: true, Object: true, Signing: true, Encrypting: true}},
	{Alg: gt.TPMAlgXOR, AlgProperties: gt.TPMAAlgorithm{Symmetric: true, Hash: true}},
	{Alg: gt.TPMAlgSHA256, AlgProperties: gt.TPMAAlgorithm{Hash: true}},
	{Alg: gt.TPMAlgSHA384, AlgProperties: gt.TPMAAlgorithm{Hash: true}},
	{Alg: gt.TPMAlgSHA512, AlgProperties: gt.TPMAAlgorithm{Hash: true}},
	{Alg: gt.TPMAlgNull},
	{Alg: gt.TPMAlgRSASSA, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Signing: true}},
	{Alg: gt.TPMAlgRSAES, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Encrypting: true}},
	{Alg: gt.TPMAlgRSAPSS, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Signing: true}},
	{Alg: gt.TPMAlgOAEP, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Encrypting: true}},
	{Alg: gt.TPMAlgECDSA, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Signing: true}},
	{Alg: gt.TPMAlgECDH, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Method: true}},
	{Alg: gt.TPMAlgECDAA, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Signing: true}},
	{Alg: gt.TPMAlgECMQV, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Method: true}},
	{Alg: gt.TPMAlgKDF1SP800108, AlgProperties: gt.TPMAAlgorithm{Hash: true, Method: true}},
	{Alg: gt.TPMAlgECC, AlgProperties: gt.TPMAAlgorithm{Asymmetric: true, Object: true}},
	{Alg: gt.TPMAlgSymCipher, AlgProperties: gt.TPMAAlgorithm{Object: true}},
	{Alg: gt.TPMAlgCTR, AlgProperties: gt.TPMAAlgorithm{Symmetric: true, Encrypting: true}},
	{Alg: gt.TPMAlgOFB, AlgProperties: gt.TPMAAlgorithm{Symmetric: true, Encrypting: true}},
	{Alg: gt.TPMAlgCBC, AlgProperties: gt.TPMAAlgorithm{Symmetric: true, Encrypting: true}},
	{Alg: gt.TPMAlgCFB, AlgProperties: gt.TPMAAlgorithm{Symmetric: true, Encrypting: true}},
	{Alg: gt.TPMAlgECB, AlgProperties: gt.TPMAAlgorithm{Symmetric: true, Encrypting: true}},
}

var implementedCurves = []gt.TPMECCCurve{gt.TPMECCNistP256, gt.TPMECCNistP384, gt.TPMECCNistP521}

func hashSupported(a gt.TPMIAlgHash) bool {
	_, ok := pcrAlgs[gt.TPMAlgID(a)]
	return ok
}

type taggedProp struct{ tag, val uint32 }

// propertyTable is every TPM_PT the TPM reports, in tag order. An array,
// not a slice, so that a GetCapability allocates nothing for it; its
// length is the literal's in properties.
type propertyTable = [67]taggedProp

func (t *TPM) properties() propertyTable {
	nCmds := uint32(len(t.commands))
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
	table := [...]taggedProp{
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
		{0x128, commitArraySize}, // TPM_PT_SPLIT_MAX
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
		{0x20C, t.ps.AlgorithmSet},
		{0x20D, uint32(len(implementedCurves))},
		{0x20E, t.ps.FailedTries},
		{0x20F, t.ps.MaxTries},
		{0x210, t.ps.RecoveryTime},
		{0x211, t.ps.LockoutRecovery},
		{0x212, 0},
		{0x213, 0},
		{0x214, 0},
	}
	return table
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

// pageOf cuts a capability list to what was asked for and what fits in
// one response (maxCapBuffer octets of itemSize-octet items), setting
// moreData when something was left out.
func pageOf[T any](r *gt.GetCapabilityResponse, items []T, count uint32, itemSize int) []T {
	if n := uint32(maxCapBuffer / itemSize); count > n {
		count = n
	}
	if uint32(len(items)) > count {
		r.MoreData = true
		return items[:count]
	}
	return items
}

// pcrSelectProperty is one TPMS_TAGGED_PCR_SELECT of the PCR properties
// (Part 2 §6.14, TPM_PT_PCR): the PCRs that have the property.
type pcrSelectProperty struct {
	tag gt.TPMPTPCR
	has func(i uint32) bool
}

func pcrProperties() []pcrSelectProperty {
	props := []pcrSelectProperty{{0x00, func(uint32) bool { return true }}} // TPM_PT_PCR_SAVE
	for l := uint8(0); l <= 4; l++ {
		bit := localityBit(l)
		props = append(props,
			pcrSelectProperty{gt.TPMPTPCR(1 + 2*l), func(i uint32) bool { return pcrExtendLocalities(i)&bit != 0 }},
			pcrSelectProperty{gt.TPMPTPCR(2 + 2*l), func(i uint32) bool { return pcrResetLocalities(i)&bit != 0 }})
	}
	return append(props,
		pcrSelectProperty{0x11, func(uint32) bool { return false }},                // TPM_PT_PCR_NO_INCREMENT
		pcrSelectProperty{0x12, func(i uint32) bool { return i >= 17 && i <= 22 }}, // TPM_PT_PCR_DRTM_RESET
		pcrSelectProperty{0x13, pcrInGroup},                                        // TPM_PT_PCR_POLICY
		pcrSelectProperty{0x14, pcrInGroup})                                        // TPM_PT_PCR_AUTH
}

// getCapability is TPM2_GetCapability, Part 3 §30.2.
func (t *TPM) getCapability(c *call, cmd *gt.GetCapability) (*gt.GetCapabilityResponse, error) {
	property, count := cmd.Property, cmd.PropertyCount
	out := &t.getCapabilityOut
	out.r = gt.GetCapabilityResponse{CapabilityData: gt.TPMSCapabilityData{Capability: cmd.Capability}}
	r := &out.r
	var data gt.TPMUCapabilities
	switch uint32(cmd.Capability) {
	case capAlgs:
		var l gt.TPMLAlgProperty
		for _, a := range implementedAlgs {
			if uint32(a.Alg) >= property {
				l.AlgProperties = append(l.AlgProperties, a)
			}
		}
		l.AlgProperties = pageOf(r, l.AlgProperties, count, 6)
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capHandles:
		var l gt.TPMLHandle
		for _, h := range t.handleList(property) {
			l.Handle = append(l.Handle, gt.TPMHandle(h))
		}
		l.Handle = pageOf(r, l.Handle, count, 4)
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capCommands:
		var l gt.TPMLCCA
		for _, cc := range t.implementedCommands() {
			if cc < property {
				continue
			}
			d := t.commands[cc]
			l.CommandAttributes = append(l.CommandAttributes, gt.TPMACC{CommandIndex: uint16(cc),
				NV: d.nv, Extensive: d.extensive, Flushed: d.flushed, CHandles: uint8(d.nHandles), RHandle: d.rspHandle})
		}
		l.CommandAttributes = pageOf(r, l.CommandAttributes, count, 4)
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capPPCommands:
		l := gt.TPMLCC{CommandCodes: pageOf(r, t.ppCommandList(property), count, 4)}
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capAuditCommands:
		l := gt.TPMLCC{CommandCodes: pageOf(r, t.auditCommandList(property), count, 4)}
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capPCRs:
		// Every implemented bank is listed, allocated or not (all PCRs
		// selected or none), whatever property and count say.
		var l gt.TPMLPCRSelection
		for _, alg := range pcrAlgOrder {
			allocated := t.pcr.banks[alg] != nil
			l.PCRSelections = append(l.PCRSelections, gt.TPMSPCRSelection{Hash: gt.TPMIAlgHash(alg),
				PCRSelect: pcrBitmap(func(uint32) bool { return allocated })})
		}
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capTPMProperties:
		props := t.properties()
		// At most one more than the page holds: enough to tell there is more.
		l := &out.props
		l.TPMProperty = out.propBuf[:0]
		for _, p := range props {
			if p.tag >= property && uint32(len(l.TPMProperty)) <= count {
				l.TPMProperty = append(l.TPMProperty, gt.TPMSTaggedProperty{Property: gt.TPMPT(p.tag), Value: p.val})
			}
		}
		l.TPMProperty = pageOf(r, l.TPMProperty, count, 8)
		data = gt.NewTPMUCapabilities(cmd.Capability, l)
	case capPCRProperties:
		var l gt.TPMLTaggedPCRProperty
		for _, p := range pcrProperties() {
			if uint32(p.tag) >= property {
				l.PCRProperty = append(l.PCRProperty, gt.TPMSTaggedPCRSelect{Tag: p.tag, PCRSelect: pcrBitmap(p.has)})
			}
		}
		l.PCRProperty = pageOf(r, l.PCRProperty, count, 4)
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capECCCurves:
		var l gt.TPMLECCCurve
		for _, c := range implementedCurves {
			if uint32(c) >= property {
				l.ECCCurves = append(l.ECCCurves, c)
			}
		}
		l.ECCCurves = pageOf(r, l.ECCCurves, count, 4)
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capAuthPolicies:
		var l gt.TPMLTaggedPolicy
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
			l.Policies = append(l.Policies, gt.TPMSTaggedPolicy{Handle: gt.TPMHandle(p.h),
				PolicyHash: gt.TPMTHA{HashAlg: gt.TPMIAlgHash(alg), Digest: p.digest}})
		}
		l.Policies = pageOf(r, l.Policies, count, 4)
		data = gt.NewTPMUCapabilities(cmd.Capability, &l)
	case capACT:
		// No Authenticated Countdown Timers.
		data = gt.NewTPMUCapabilities(cmd.Capability, &gt.TPMLACTData{})
	default:
		return nil, rcP(rcValue, 1, "capability 0x%x", uint32(cmd.Capability))
	}
	r.CapabilityData.Data = data
	return r, nil
}

// getCapabilityResponse is GetCapability's response, kept in the TPM
// until it is encoded, before Process returns: clients ask for TPM
// properties at every start and around many commands. propBuf holds every
// TPM property (a page is at most all of them, and one more only when
// there are more).
type getCapabilityResponse struct {
	r       gt.GetCapabilityResponse
	props   gt.TPMLTaggedTPMProperty
	propBuf [len(propertyTable{})]gt.TPMSTaggedProperty
}

// testParms is TPM2_TestParms, Part 3 §30.3.
func (t *TPM) testParms(c *call, cmd *gt.TestParms) (*gt.TestParmsResponse, error) {
	return nil, checkPublicParms(cmd.Parameters.Type, &cmd.Parameters.Parameters, 1)
}
