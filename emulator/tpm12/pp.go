package tpm12

// Physical presence (Part 1 §7.2, Part 3 §5 and §6.6).
//
// A vTPM has no presence pin: hardware presence is never asserted, and
// physicalPresenceHWEnable only records what TSC_PhysicalPresence set.
// Presence is the software flag TPM_STCLEAR_FLAGS.physicalPresence,
// which TSC_PhysicalPresence(TPM_PHYSICAL_PRESENCE_PRESENT) sets while
// physicalPresenceCMDEnable is set and physicalPresenceLock is not. As
// on a PC, whoever starts the TPM plays the BIOS: it asserts presence
// for an administrator, or locks it (PHYSICAL_PRESENCE_NOTPRESENT |
// PHYSICAL_PRESENCE_LOCK) before the operating system runs, so that no
// software after it can assert presence until the next
// Startup(ST_CLEAR). The vTPM domain does this after its Startup (its
// pp= option); the engine itself accepts the command at any locality, as
// libtpms does.

// Ordinals of the physical-presence commands, Part 2 §17.
const (
	ordPhysicalEnable         uint32 = 0x0000006F
	ordPhysicalDisable        uint32 = 0x00000070
	ordPhysicalSetDeactivated uint32 = 0x00000072
	ordSetTempDeactivated     uint32 = 0x00000073
	ordPhysicalPresence       uint32 = 0x4000000A // TSC_ORD_PhysicalPresence
	ordResetEstablishmentBit  uint32 = 0x4000000B // TSC_ORD_ResetEstablishmentBit
)

// TPM_PHYSICAL_PRESENCE bits, Part 2 §4.9.
const (
	ppLock         uint16 = 0x0004
	ppPresent      uint16 = 0x0008
	ppNotPresent   uint16 = 0x0010
	ppCMDEnable    uint16 = 0x0020
	ppHWEnable     uint16 = 0x0040
	ppLifetimeLock uint16 = 0x0080
	ppCMDDisable   uint16 = 0x0100
	ppHWDisable    uint16 = 0x0200

	// ppLifetime are the lifetime settings (A1 of §6.6), ppAssert the
	// assertion settings (A2).
	ppLifetime = ppLifetimeLock | ppHWEnable | ppCMDEnable | ppHWDisable | ppCMDDisable
	ppAssert   = ppLock | ppPresent | ppNotPresent
)

// rcNoOperator is TPM_NOOPERATOR (Part 2 §16): no operator authData is
// set.
const rcNoOperator uint32 = 0x49

// physicalPresence is whether presence is asserted: the software flag,
// while physicalPresenceCMDEnable lets it count.
func (t *TPM) physicalPresence() bool {
	return t.ps.Flags.PhysicalPresenceCMDEnable && t.stclear.PhysicalPresence
}

type u16In struct{ V uint16 }

func (p *u16In) unmarshal(r *reader) { p.V = r.u16() }

// tscPhysicalPresence is TSC_PhysicalPresence, Part 3 §6.6: either the
// lifetime settings (which of the command and the hardware may assert
// presence, and the lifetime lock on that choice) or an assertion
// (present, not present, locked until Startup(ST_CLEAR)), never both.
func (t *TPM) tscPhysicalPresence(_ *call, in *u16In) (*none, error) {
	pp := in.V
	if pp&^(ppLifetime|ppAssert) != 0 {
		return nil, rcE(rcBadParameter, "physicalPresence %#x: unknown bits", pp)
	}
	a1, a2 := pp&ppLifetime, pp&ppAssert
	f := &t.ps.Flags
	switch {
	case a1 != 0:
		if f.PhysicalPresenceLifetimeLock {
			return nil, rcE(rcBadParameter, "physicalPresenceLifetimeLock")
		}
		if a2 != 0 || pp&ppHWEnable != 0 && pp&ppHWDisable != 0 || pp&ppCMDEnable != 0 && pp&ppCMDDisable != 0 {
			return nil, rcE(rcBadParameter, "physicalPresence %#x: conflicting bits", pp)
		}
		old := *f
		if pp&ppHWEnable != 0 {
			f.PhysicalPresenceHWEnable = true
		}
		if pp&ppHWDisable != 0 {
			f.PhysicalPresenceHWEnable = false
		}
		if pp&ppCMDEnable != 0 {
			f.PhysicalPresenceCMDEnable = true
		}
		if pp&ppCMDDisable != 0 {
			f.PhysicalPresenceCMDEnable = false
		}
		if pp&ppLifetimeLock != 0 {
			f.PhysicalPresenceLifetimeLock = true
		}
		if *f != old {
			t.nvDirty = true
		}
	case a2 != 0:
		if !f.PhysicalPresenceCMDEnable {
			return nil, rcE(rcBadParameter, "physicalPresenceCMDEnable clear")
		}
		if pp&ppLock != 0 && pp&ppPresent != 0 || pp&ppPresent != 0 && pp&ppNotPresent != 0 {
			return nil, rcE(rcBadParameter, "physicalPresence %#x: conflicting bits", pp)
		}
		if t.stclear.PhysicalPresenceLock {
			return nil, rcE(rcBadParameter, "physicalPresenceLock")
		}
		if pp&ppLock != 0 {
			t.stclear.PhysicalPresence, t.stclear.PhysicalPresenceLock = false, true
		}
		if pp&ppPresent != 0 {
			t.stclear.PhysicalPresence = true
		}
		if pp&ppNotPresent != 0 {
			t.stclear.PhysicalPresence = false
		}
	default:
		return nil, rcE(rcBadParameter, "physicalPresence 0")
	}
	return &none{}, nil
}

// needPresence answers TPM_BAD_PRESENCE when presence is not asserted.
func (t *TPM) needPresence() error {
	if !t.physicalPresence() {
		return rcE(rcBadPresence, "physical presence not asserted")
	}
	return nil
}

// setPermanent sets a permanent flag, recording a change.
func (t *TPM) setPermanent(flag *bool, v bool) {
	if *flag != v {
		*flag = v
		t.nvDirty = true
	}
}

// physicalEnable is TPM_PhysicalEnable, Part 3 §5.3.
func (t *TPM) physicalEnable(_ *call, _ *none) (*none, error) {
	if err := t.needPresence(); err != nil {
		return nil, err
	}
	t.setPermanent(&t.ps.Flags.Disable, false)
	return &none{}, nil
}

// physicalDisable is TPM_PhysicalDisable, Part 3 §5.4.
func (t *TPM) physicalDisable(_ *call, _ *none) (*none, error) {
	if err := t.needPresence(); err != nil {
		return nil, err
	}
	t.setPermanent(&t.ps.Flags.Disable, true)
	return &none{}, nil
}

// physicalSetDeactivated is TPM_PhysicalSetDeactivated, Part 3 §5.5:
// the permanent flag, which takes effect at the next Startup(ST_CLEAR).
func (t *TPM) physicalSetDeactivated(_ *call, in *boolIn) (*none, error) {
	if err := t.needPresence(); err != nil {
		return nil, err
	}
	t.setPermanent(&t.ps.Flags.Deactivated, in.V)
	return &none{}, nil
}

// setTempDeactivated is TPM_SetTempDeactivated, Part 3 §5.6:
// deactivated until the next Startup(ST_CLEAR), on physical presence
// or the operator's authorization. This TPM has no TPM_SetOperatorAuth,
// so an authorized request answers TPM_NOOPERATOR.
func (t *TPM) setTempDeactivated(c *call, _ *none) (*none, error) {
	if len(c.auth) > 0 {
		return nil, rcE(rcNoOperator, "no operator authorization set")
	}
	if err := t.needPresence(); err != nil {
		return nil, err
	}
	t.stclear.Deactivated = true
	return &none{}, nil
}

// tscResetEstablishmentBit is TSC_ResetEstablishmentBit, Part 3 §6.7:
// clears TPM_PERMANENT_FLAGS.tpmEstablished, which a dynamic launch
// (TPM_HASH_START) sets; only localities 3 and 4 may. Firmware sends it
// at every boot: SeaBIOS takes any other answer than success or
// TPM_BAD_LOCALITY for a broken TPM and deactivates it for the boot.
func (t *TPM) tscResetEstablishmentBit(_ *call, _ *none) (*none, error) {
	if t.locality != 3 && t.locality != 4 {
		return nil, rcE(rcBadLocality, "TSC_ResetEstablishmentBit at locality %d", t.locality)
	}
	if t.ps.Flags.TPMEstablished {
		t.ps.Flags.TPMEstablished = false
		t.nvDirty = true
	}
	return &none{}, nil
}
