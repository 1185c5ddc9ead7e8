package conformance

import (
	"fmt"
	"testing"

	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

const (
	ordPhysicalEnable, ordPhysicalDisable            = 0x6F, 0x70
	ordPhysicalSetDeactivated, ordSetTempDeactivated = 0x72, 0x73
	ordTSCPhysicalPresence                           = 0x4000000A
	ordTSCResetEstablishmentBit                      = 0x4000000B

	ppLock, ppPresent, ppNotPresent uint16 = 0x0004, 0x0008, 0x0010
	ppCMDEnable, ppHWEnable         uint16 = 0x0020, 0x0040
	ppLifetimeLock, ppCMDDisable    uint16 = 0x0080, 0x0100
	ppHWDisable                     uint16 = 0x0200
)

// manufacturedPair is a new engine and a swtpm that swtpm_setup
// --createek made, both after Startup(ST_CLEAR).
func manufacturedPair(t *testing.T) []*client {
	ref := &reference{p: swtpmtest.Start12Manufactured(t)}
	eng, err := tpm12.New(tpm12.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []tpm{engine{eng}, ref} {
		if rc, _, e := do(side, ordStartup, u16(1)); rc != 0 || e != "" {
			t.Fatalf("Startup: rc %#x %s", rc, e)
		}
	}
	return []*client{{tr: engine{eng}}, {tr: ref}}
}

func ppStep(name string, ord uint32, parts ...[]byte) func(*client) diffStep {
	return ownerStep(name, func(c *client) string {
		rc, out, e := do(c.tr, ord, parts...)
		return e + fmt.Sprintf("rc=%#x %x", rc, out)
	})
}

func flagSteps(when string) []func(*client) diffStep {
	return []func(*client) diffStep{
		ppStep("CAP_FLAG permanent "+when, ordGetCapability, capArgs(4, u32(0x108))...),
		ppStep("CAP_FLAG volatile "+when, ordGetCapability, capArgs(4, u32(0x109))...),
	}
}

func cycle(name string, st uint16) func(*client) diffStep {
	return ownerStep(name, func(c *client) string {
		if err := c.tr.init(); err != nil {
			return err.Error()
		}
		rc, _, e := do(c.tr, ordStartup, u16(st))
		return e + fmt.Sprintf("rc=%#x", rc)
	})
}

// ppSteps compare TSC_PhysicalPresence and the commands that need
// presence, from the state swtpm_setup --createek leaves
// (physicalPresenceCMDEnable set, nothing lifetime-locked).
func ppSteps() []func(*client) diffStep {
	owner := sha1Of([]byte("owner"))
	steps := flagSteps("at manufacture")
	steps = append(steps,
		ppStep("PhysicalEnable without presence", ordPhysicalEnable),
		ppStep("PhysicalDisable without presence", ordPhysicalDisable),
		ppStep("PhysicalSetDeactivated without presence", ordPhysicalSetDeactivated, []byte{1}),
		ppStep("SetTempDeactivated without presence", ordSetTempDeactivated),
		ppStep("ForceClear without presence", ordForceClear),
		ppStep("PhysicalSetDeactivated short", ordPhysicalSetDeactivated),
		ppStep("PhysicalEnable extra byte", ordPhysicalEnable, []byte{0}),
	)
	for _, pp := range []uint16{0, 0x0001, 0x0400, 0x8000, ppPresent | ppNotPresent, ppLock | ppPresent,
		ppCMDEnable | ppCMDDisable, ppHWEnable | ppHWDisable, ppCMDEnable | ppPresent, ppLifetimeLock | ppLock} {
		steps = append(steps, ppStep(fmt.Sprintf("TSC_PhysicalPresence %#x", pp), ordTSCPhysicalPresence, u16(pp)))
	}
	steps = append(steps,
		ppStep("TSC_PhysicalPresence short", ordTSCPhysicalPresence, []byte{0}),
		ownerStep("TSC_PhysicalPresence PRESENT at locality 4 and 3", func(c *client) string {
			rc4, _, e4 := doAt(c.tr, 4, 0xC1, ordTSCPhysicalPresence, u16(ppNotPresent))
			rc3, _, e3 := doAt(c.tr, 3, 0xC1, ordTSCPhysicalPresence, u16(ppNotPresent))
			return e4 + e3 + fmt.Sprintf("rc=%#x rc=%#x", rc4, rc3)
		}),
		ppStep("TSC_PhysicalPresence PRESENT", ordTSCPhysicalPresence, u16(ppPresent)),
		// Firmware (SeaBIOS) sends it at every boot, at locality 3.
		ownerStep("TSC_ResetEstablishmentBit at localities 0, 3 and 4", func(c *client) string {
			var s string
			for _, l := range []uint8{0, 1, 2, 3, 4} {
				rc, _, e := doAt(c.tr, l, 0xC1, ordTSCResetEstablishmentBit)
				s += e + fmt.Sprintf("%d: rc=%#x; ", l, rc)
			}
			rc, _, e := doAt(c.tr, 3, 0xC1, ordTSCResetEstablishmentBit, []byte{0})
			return s + e + fmt.Sprintf("extra byte: rc=%#x", rc)
		}),
	)
	steps = append(steps, flagSteps("with presence")...)
	steps = append(steps,
		ppStep("PhysicalDisable", ordPhysicalDisable),
		ppStep("GetRandom while disabled", ordGetRandom, u32(0)),
		ppStep("PhysicalSetDeactivated while disabled", ordPhysicalSetDeactivated, []byte{1}),
		ppStep("PhysicalDisable while disabled", ordPhysicalDisable),
		ppStep("PhysicalEnable", ordPhysicalEnable),
		ppStep("PhysicalSetDeactivated TRUE", ordPhysicalSetDeactivated, []byte{1}),
		ppStep("GetRandom after PhysicalSetDeactivated", ordGetRandom, u32(0)),
	)
	steps = append(steps, flagSteps("after PhysicalSetDeactivated")...)
	steps = append(steps,
		ppStep("SetTempDeactivated", ordSetTempDeactivated),
		ppStep("GetRandom after SetTempDeactivated", ordGetRandom, u32(0)),
		ppStep("SetTempDeactivated while deactivated", ordSetTempDeactivated),
		cycle("_TPM_Init, Startup(ST_CLEAR)", 1),
		ppStep("GetRandom deactivated", ordGetRandom, u32(0)),
		ppStep("PhysicalSetDeactivated FALSE without presence", ordPhysicalSetDeactivated, []byte{0}),
		ppStep("TSC_PhysicalPresence PRESENT again", ordTSCPhysicalPresence, u16(ppPresent)),
		ppStep("PhysicalSetDeactivated FALSE", ordPhysicalSetDeactivated, []byte{0}),
		ppStep("TSC_PhysicalPresence NOTPRESENT|LOCK", ordTSCPhysicalPresence, u16(ppNotPresent|ppLock)),
		ppStep("TSC_PhysicalPresence PRESENT when locked", ordTSCPhysicalPresence, u16(ppPresent)),
		ppStep("PhysicalEnable when locked", ordPhysicalEnable),
	)
	steps = append(steps, flagSteps("when locked")...)
	steps = append(steps,
		cycle("_TPM_Init, Startup(ST_CLEAR) again", 1),
		ppStep("GetRandom activated", ordGetRandom, u32(0)),
		ownerStep("TSC_PhysicalPresence before Startup", func(c *client) string {
			err := c.tr.init()
			rc1, _, e1 := do(c.tr, ordTSCPhysicalPresence, u16(ppPresent))
			rc2, _, e2 := do(c.tr, ordStartup, u16(1))
			return fmt.Sprintf("%v %s%s rc=%#x rc=%#x", err, e1, e2, rc1, rc2)
		}),
		// An owner removed with presence, then enabled and activated
		// again, as a PC user does through the BIOS after tpm_clear.
		ownerStep("ReadPubek", func(c *client) string { return c.readEK() }),
		ownerStep("TakeOwnership", func(c *client) string {
			c.owner, c.srk = owner, make([]byte, 20)
			return c.takeOwnership(5, c.oaep(owner), c.oaep(c.srk), srkParams(0x11, 0, 2048, 2), owner)
		}),
		ppStep("TSC_PhysicalPresence PRESENT for ForceClear", ordTSCPhysicalPresence, u16(ppPresent)),
		ppStep("ForceClear", ordForceClear),
	)
	steps = append(steps, flagSteps("after ForceClear")...)
	steps = append(steps,
		ppStep("PhysicalEnable after ForceClear", ordPhysicalEnable),
		ppStep("PhysicalSetDeactivated FALSE after ForceClear", ordPhysicalSetDeactivated, []byte{0}),
		cycle("_TPM_Init, Startup(ST_CLEAR) after ForceClear", 1),
		ownerStep("ReadPubek after ForceClear", func(c *client) string { return c.readEK() }),
		ownerStep("TakeOwnership after ForceClear", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), c.oaep(c.srk), srkParams(0x11, 0, 2048, 2), owner)
		}),
		// SaveState's data survives a command refused before Startup.
		ppStep("SaveState", ordSaveState),
		ownerStep("_TPM_Init, GetCapability and an unknown ordinal before Startup(ST_STATE)", func(c *client) string {
			err := c.tr.init()
			rc1, _, e1 := do(c.tr, ordGetCapability, capArgs(6, nil)...)
			rc2, _, e2 := do(c.tr, 0x1234)
			rc3, _, e3 := do(c.tr, ordStartup, u16(2))
			return fmt.Sprintf("%v %s%s%s rc=%#x rc=%#x rc=%#x", err, e1, e2, e3, rc1, rc2, rc3)
		}),
		// The lifetime settings, last: they are for good.
		ppStep("TSC_PhysicalPresence HW_ENABLE", ordTSCPhysicalPresence, u16(ppHWEnable)),
		ppStep("TSC_PhysicalPresence CMD_DISABLE|LIFETIME_LOCK", ordTSCPhysicalPresence, u16(ppCMDDisable|ppLifetimeLock)),
		ppStep("TSC_PhysicalPresence CMD_ENABLE after the lifetime lock", ordTSCPhysicalPresence, u16(ppCMDEnable)),
		ppStep("TSC_PhysicalPresence PRESENT with the command disabled", ordTSCPhysicalPresence, u16(ppPresent)),
	)
	return append(steps, flagSteps("after the lifetime lock")...)
}

// TestSwtpm12PhysicalPresence compares the factory flags with those
// swtpm_setup --createek leaves, and the physical-presence commands.
func TestSwtpm12PhysicalPresence(t *testing.T) {
	runClientSteps(t, manufacturedPair(t), ppSteps())
}
