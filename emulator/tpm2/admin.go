package tpm2

import (
	"slices"

	gt "github.com/google/go-tpm/tpm2"
)

// Hierarchy and dictionary-attack administration, Part 3 §24 and §25.

// flushHierarchy removes the transient objects and the persistent
// objects of a hierarchy (its seed or enable changed).
func (t *TPM) flushHierarchy(h uint32, persistent bool) {
	for k, o := range t.objects {
		if o.hierarchy == h {
			delete(t.objects, k)
		}
	}
	if persistent {
		for k, o := range t.ps.persistent {
			if o.hierarchy == h {
				delete(t.ps.persistent, k)
			}
		}
	}
}

// hierarchyChangeAuth is TPM2_HierarchyChangeAuth, Part 3 §24.8.
func (t *TPM) hierarchyChangeAuth(c *call, cmd *gt.HierarchyChangeAuth) (*gt.HierarchyChangeAuthResponse, error) {
	auth := cmd.NewAuth.Buffer
	// Hierarchy authValues are limited to the largest digest
	// (Part 3 §24.8: size of the context integrity digest).
	if len(trimAuth(auth)) > 32 {
		return nil, rcP(rcSize, 1, "newAuth too long")
	}
	v := append([]byte{}, auth...)
	switch c.handles[0] {
	case rhOwner:
		t.ps.OwnerAuth = v
	case rhEndorsement:
		t.ps.EndorsementAuth = v
	case rhPlatform:
		t.ps.PlatformAuth = v
	case rhLockout:
		t.ps.LockoutAuth = v
	default:
		return nil, rcH(rcValue, 1, "not a hierarchy")
	}
	return nil, nil
}

// setPrimaryPolicy is TPM2_SetPrimaryPolicy, Part 3 §24.3.
func (t *TPM) setPrimaryPolicy(c *call, cmd *setPrimaryPolicyCmd) (*emptyResponse, error) {
	pol, alg := cmd.AuthPolicy.Buffer, cmd.HashAlg
	// The policy is a digest of hashAlg, empty for TPM_ALG_NULL.
	size := 0
	if alg != gt.TPMAlgNull {
		h, err := alg.Hash()
		if err != nil || !hashSupported(alg) {
			return nil, rcP(rcHash, 2, "hash 0x%x", uint16(alg))
		}
		size = h.Size()
	}
	if len(pol) != size {
		return nil, rcP(rcSize, 1, "policy of %d octets for hash 0x%x", len(pol), uint16(alg))
	}
	v := append([]byte{}, pol...)
	switch c.handles[0] {
	case rhOwner:
		t.ps.OwnerPolicy, t.ps.OwnerPolicyAlg = v, uint16(alg)
	case rhEndorsement:
		t.ps.EndorsementPolicy, t.ps.EndorsementPolicyAlg = v, uint16(alg)
	case rhPlatform:
		t.ps.PlatformPolicy, t.ps.PlatformPolicyAlg = v, uint16(alg)
	case rhLockout:
		t.ps.LockoutPolicy, t.ps.LockoutPolicyAlg = v, uint16(alg)
	default:
		return nil, rcH(rcValue, 1, "not a hierarchy")
	}
	return nil, nil
}

// hierarchyControl is TPM2_HierarchyControl, Part 3 §24.2.
func (t *TPM) hierarchyControl(c *call, cmd *hierarchyControlCmd) (*emptyResponse, error) {
	auth, en, state := c.handles[0], uint32(cmd.Enable), bool(cmd.State)
	if auth != rhPlatform && auth != rhOwner && auth != rhEndorsement {
		return nil, rcH(rcAuthType, 1, "HierarchyControl authorization")
	}
	// Only the platform may enable, and a hierarchy may only disable
	// itself (Part 3 §24.5).
	if state && auth != rhPlatform {
		return nil, rcH(rcAuthType, 1, "only the platform can enable")
	}
	if auth != rhPlatform && auth != en {
		return nil, rcH(rcAuthType, 1, "hierarchy can only disable itself")
	}
	switch en {
	case rhOwner:
		t.ps.ShEnable = state
		if !state {
			t.flushHierarchy(rhOwner, false)
		}
	case rhEndorsement:
		t.ps.EhEnable = state
		if !state {
			t.flushHierarchy(rhEndorsement, false)
		}
	case rhPlatform:
		if state {
			return nil, rcP(rcValue, 1, "platform hierarchy is enabled only by reset")
		}
		t.phEnable = false
		t.flushHierarchy(rhPlatform, false)
	case rhPlatformNV:
		t.phEnableNV = state
	default:
		return nil, rcP(rcValue, 1, "enable 0x%08x", en)
	}
	return nil, nil
}

// clear is TPM2_Clear, Part 3 §24.6.
func (t *TPM) clear(c *call, cmd *gt.Clear) (*gt.ClearResponse, error) {
	if c.handles[0] != rhLockout && c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "Clear needs lockout or platform")
	}
	if t.ps.DisableClear {
		return nil, rcE(rcDisabled, "Clear is disabled")
	}
	// Part 3 §24.6: new storage seed, owner/endorsement auth and
	// policies cleared, owner NV and persistent objects removed,
	// lockout auth cleared, DA reset, hierarchies enabled.
	t.ps.SPS = t.randBytes(64)
	t.ps.OwnerAuth, t.ps.EndorsementAuth, t.ps.LockoutAuth = nil, nil, nil
	t.ps.OwnerPolicy, t.ps.EndorsementPolicy, t.ps.LockoutPolicy = nil, nil, nil
	t.ps.OwnerPolicyAlg, t.ps.EndorsementPolicyAlg, t.ps.LockoutPolicyAlg = 0, 0, 0
	t.ps.ShEnable, t.ps.EhEnable = true, true
	// The reference's Clear also restores the dictionary-attack
	// parameters it installs at manufacture, restarts Clock at zero,
	// zeroes resetCount, restartCount and the audit counter, empties the
	// PCR authValues and counts a PCR change.
	t.ps.FailedTries, t.ps.LockoutAuthLocked = 0, false
	t.ps.MaxTries, t.ps.RecoveryTime, t.ps.LockoutRecovery = 3, 1000, 1000
	t.ps.ClockUnsafe = false // Part 2 §10.11.1: safe is SET by TPM2_Clear
	if !t.clockBase.IsZero() {
		t.timeOffsetMS, t.clockBase = t.timeMS(), t.now()
	}
	t.clockOffsetMS, t.ps.ClockMS = 0, 0
	t.ps.DALastMS, t.ps.LockoutFailMS = 0, 0
	t.ps.ResetCount, t.ps.RestartCount, t.ps.AuditCounter = 0, 0, 0
	t.pcrAuth = nil
	t.pcrUpdateCounter++
	t.flushHierarchy(rhOwner, true)
	t.flushHierarchy(rhEndorsement, true)
	for h, n := range t.ps.nv {
		if !n.platformCreate() {
			delete(t.ps.nv, h)
		}
	}
	for k := range t.primaryCache {
		delete(t.primaryCache, k)
	}
	return nil, nil
}

// clearControl is TPM2_ClearControl, Part 3 §24.7.
func (t *TPM) clearControl(c *call, cmd *clearControlCmd) (*emptyResponse, error) {
	h := c.handles[0]
	if h != rhLockout && h != rhPlatform {
		return nil, rcH(rcValue, 1, "ClearControl needs lockout or platform")
	}
	if !cmd.Disable && h != rhPlatform {
		return nil, rcE(rcAuthFail, "only the platform re-enables Clear")
	}
	t.ps.DisableClear = bool(cmd.Disable)
	return nil, nil
}

// changeEPS is TPM2_ChangeEPS, Part 3 §24.5.
func (t *TPM) changeEPS(c *call, cmd *changeEPSCmd) (*emptyResponse, error) {
	if c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "ChangeEPS needs platform")
	}
	t.ps.EPS = t.randBytes(64)
	t.ps.EndorsementAuth, t.ps.EndorsementPolicy, t.ps.EndorsementPolicyAlg = nil, nil, 0
	t.ps.EhEnable = true
	t.flushHierarchy(rhEndorsement, true)
	return nil, nil
}

// changePPS is TPM2_ChangePPS, Part 3 §24.4.
func (t *TPM) changePPS(c *call, cmd *changePPSCmd) (*emptyResponse, error) {
	if c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "ChangePPS needs platform")
	}
	t.ps.PPS = t.randBytes(64)
	t.ps.PlatformPolicy, t.ps.PlatformPolicyAlg = nil, 0
	t.flushHierarchy(rhPlatform, true)
	return nil, nil
}

// dictionaryAttackLockReset is TPM2_DictionaryAttackLockReset, Part 3 §25.2.
func (t *TPM) dictionaryAttackLockReset(c *call, cmd *daLockResetCmd) (*emptyResponse, error) {
	if c.handles[0] != rhLockout {
		return nil, rcH(rcValue, 1, "needs the lockout hierarchy")
	}
	t.ps.FailedTries = 0
	return nil, nil
}

// dictionaryAttackParameters is TPM2_DictionaryAttackParameters, Part 3 §25.3.
func (t *TPM) dictionaryAttackParameters(c *call, cmd *daParametersCmd) (*emptyResponse, error) {
	if c.handles[0] != rhLockout {
		return nil, rcH(rcValue, 1, "needs the lockout hierarchy")
	}
	t.ps.MaxTries, t.ps.RecoveryTime, t.ps.LockoutRecovery = cmd.NewMaxTries, cmd.NewRecoveryTime, cmd.LockoutRecovery
	t.ps.FailedTries = 0
	return nil, nil
}

// Miscellaneous management functions, Part 3 §26.

// ppCapable are the commands that TPM2_PP_Commands may make require
// physical presence when the platform authorizes them: those whose
// authorization Part 3 marks "Physical Presence: yes", the reference
// implementation's PP_COMMAND attribute.
var ppCapable = map[uint32]bool{
	uint32(gt.TPMCCNVUndefineSpaceSpecial): true, uint32(gt.TPMCCEvictControl): true,
	uint32(gt.TPMCCHierarchyControl): true, uint32(gt.TPMCCNVUndefineSpace): true,
	uint32(gt.TPMCCChangeEPS): true, uint32(gt.TPMCCChangePPS): true, uint32(gt.TPMCCClear): true,
	uint32(gt.TPMCCClearControl): true, uint32(gt.TPMCCClockSet): true,
	// go-tpm spells TPM_CC_HierarchyChangeAuth with a typo.
	uint32(gt.TPMCCHierarchyChanegAuth): true, uint32(gt.TPMCCNVDefineSpace): true,
	uint32(gt.TPMCCPCRAllocate): true, uint32(gt.TPMCCPCRSetAuthPolicy): true,
	uint32(gt.TPMCCSetPrimaryPolicy): true, uint32(gt.TPMCCClockRateAdjust): true,
	uint32(gt.TPMCCCreatePrimary): true, uint32(gt.TPMCCNVGlobalWriteLock): true,
	uint32(gt.TPMCCSetCommandCodeAuditStatus): true, uint32(gt.TPMCCCreateLoaded): true,
}

// ppRequired reports whether command cc, authorized by the platform,
// needs physical presence: TPM2_PP_Commands always does, the others when
// TPM2_PP_Commands put them on the list.
func (t *TPM) ppRequired(cc uint32) bool {
	return cc == uint32(gt.TPMCCPPCommands) || ppCapable[cc] && slices.Contains(t.ps.PPCommands, cc)
}

// ppCommandList is TPM_CAP_PP_COMMANDS from property on.
func (t *TPM) ppCommandList(property uint32) []gt.TPMCC {
	var out []gt.TPMCC
	for _, cc := range t.implementedCommands() {
		if cc >= property && t.ppRequired(cc) {
			out = append(out, gt.TPMCC(cc))
		}
	}
	return out
}

// ppCommands is TPM2_PP_Commands, Part 3 §26.2. Codes of commands that
// are not implemented or cannot require physical presence are ignored,
// as is clearing TPM2_PP_Commands itself; setList is applied first.
func (t *TPM) ppCommands(c *call, cmd *ppCommandsCmd) (*emptyResponse, error) {
	if c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "PP_Commands needs platform")
	}
	list := slices.Clone(t.ps.PPCommands)
	for _, cc := range cmd.SetList.CommandCodes {
		if ppCapable[uint32(cc)] && t.commands[uint32(cc)] != nil {
			list = append(list, uint32(cc))
		}
	}
	for _, cc := range cmd.ClearList.CommandCodes {
		list = slices.DeleteFunc(list, func(x uint32) bool { return x == uint32(cc) })
	}
	slices.Sort(list)
	t.ps.PPCommands = slices.Compact(list)
	return nil, nil
}

// setAlgorithmSet is TPM2_SetAlgorithmSet, Part 3 §26.3. The value is
// vendor-defined; this TPM keeps it and reports it as
// TPM_PT_ALGORITHM_SET, with the same algorithms whatever it is, as the
// reference implementation does.
func (t *TPM) setAlgorithmSet(c *call, cmd *setAlgorithmSetCmd) (*emptyResponse, error) {
	if c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "SetAlgorithmSet needs platform")
	}
	t.ps.AlgorithmSet = cmd.AlgorithmSet
	return nil, nil
}
