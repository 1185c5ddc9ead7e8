package tpm12

import "testing"

func TestPhysicalPresence(t *testing.T) {
	tp := startedTPM(t)
	// Presence not asserted: the presence commands are refused.
	for _, ord := range []uint32{ordPhysicalEnable, ordPhysicalDisable, ordForceClear, ordSetTempDeactivated} {
		wantRC(t, tp, rcBadPresence, 0, tagRquCommand, ord)
	}
	wantRC(t, tp, rcBadPresence, 0, tagRquCommand, ordPhysicalSetDeactivated, []byte{1})
	for _, c := range []struct {
		pp   uint16
		want uint32
	}{
		{0, rcBadParameter},
		{0x0001, rcBadParameter},
		{ppPresent | ppNotPresent, rcBadParameter},
		{ppLock | ppPresent, rcBadParameter},
		{ppCMDEnable | ppCMDDisable, rcBadParameter},
		{ppHWEnable | ppHWDisable, rcBadParameter},
		{ppCMDEnable | ppPresent, rcBadParameter},
	} {
		wantRC(t, tp, c.want, 0, tagRquCommand, ordPhysicalPresence, u16(c.pp))
	}
	tp.NVChanged()
	mustRun(t, tp, ordPhysicalPresence, u16(ppPresent))
	if tp.NVChanged() {
		t.Error("asserting presence changed durable state")
	}
	mustRun(t, tp, ordPhysicalDisable)
	if !tp.ps.Flags.Disable || !tp.NVChanged() {
		t.Error("PhysicalDisable")
	}
	wantRC(t, tp, rcDisabled, 0, tagRquCommand, ordPhysicalSetDeactivated, []byte{1})
	mustRun(t, tp, ordPhysicalEnable)
	mustRun(t, tp, ordPhysicalSetDeactivated, []byte{1})
	// The permanent flag takes effect at the next Startup(ST_CLEAR).
	mustRun(t, tp, ordGetRandom, u32(4))
	mustRun(t, tp, ordSetTempDeactivated)
	wantRC(t, tp, rcDeactivated, 0, tagRquCommand, ordGetRandom, u32(4))
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	wantRC(t, tp, rcDeactivated, 0, tagRquCommand, ordGetRandom, u32(4))
	// Presence ends with the power cycle.
	wantRC(t, tp, rcBadPresence, 0, tagRquCommand, ordPhysicalSetDeactivated, []byte{0})
	mustRun(t, tp, ordPhysicalPresence, u16(ppPresent))
	mustRun(t, tp, ordPhysicalSetDeactivated, []byte{0})
	// Locked: no assertion until the next Startup(ST_CLEAR).
	mustRun(t, tp, ordPhysicalPresence, u16(ppNotPresent|ppLock))
	wantRC(t, tp, rcBadParameter, 0, tagRquCommand, ordPhysicalPresence, u16(ppPresent))
	wantRC(t, tp, rcBadPresence, 0, tagRquCommand, ordPhysicalEnable)
	// The lifetime settings: the command's presence can be disabled, and
	// the choice locked for good.
	mustRun(t, tp, ordPhysicalPresence, u16(ppCMDDisable|ppLifetimeLock))
	if !tp.NVChanged() {
		t.Error("lifetime settings without an NV change")
	}
	wantRC(t, tp, rcBadParameter, 0, tagRquCommand, ordPhysicalPresence, u16(ppCMDEnable))
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	wantRC(t, tp, rcBadParameter, 0, tagRquCommand, ordPhysicalPresence, u16(ppPresent))
	// An operator-authorized SetTempDeactivated: no operator is set.
	wantRC(t, tp, rcNoOperator, 0, tagRquAuth1, ordSetTempDeactivated, make([]byte, authAreaSize))
}

func TestForceClearWithPresence(t *testing.T) {
	tp, _ := ownedTPM(t)
	mustRun(t, tp, ordPhysicalPresence, u16(ppPresent))
	mustRun(t, tp, ordForceClear)
	if tp.ps.Owned || !tp.ps.Flags.Disable || !tp.ps.Flags.Deactivated {
		t.Fatalf("after ForceClear: owned %v flags %+v", tp.ps.Owned, tp.ps.Flags)
	}
	// As after tpm_clear on a PC: enable and activate with presence,
	// then take ownership again after the next Startup(ST_CLEAR).
	mustRun(t, tp, ordPhysicalEnable)
	mustRun(t, tp, ordPhysicalSetDeactivated, []byte{0})
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	mustRun(t, tp, ordGetRandom, u32(4))
}

// TSC_ResetEstablishmentBit clears tpmEstablished, at localities 3 and 4
// only: SeaBIOS sends it at locality 3 at every boot and deactivates a
// TPM that answers anything but success or TPM_BAD_LOCALITY.
func TestResetEstablishmentBit(t *testing.T) {
	tp := startedTPM(t)
	tp.ps.Flags.TPMEstablished = true
	tp.NVChanged()
	wantRC(t, tp, rcBadLocality, 0, tagRquCommand, ordResetEstablishmentBit)
	if !tp.ps.Flags.TPMEstablished {
		t.Fatal("cleared at locality 0")
	}
	wantRC(t, tp, rcSuccess, 3, tagRquCommand, ordResetEstablishmentBit)
	if tp.ps.Flags.TPMEstablished || !tp.NVChanged() {
		t.Errorf("at locality 3: tpmEstablished %v, or no NV change reported", tp.ps.Flags.TPMEstablished)
	}
	wantRC(t, tp, rcSuccess, 4, tagRquCommand, ordResetEstablishmentBit)
}
