package tpm12

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestCapabilityProperties(t *testing.T) {
	tp := startedTPM(t)
	prop := func(p uint32) []byte { return getCap(t, tp, capProperty, u32(p)) }
	if got := prop(propPCR); !bytes.Equal(got, u32(24)) {
		t.Errorf("TPM_CAP_PROP_PCR %x", got)
	}
	if got := prop(propManufacturer); string(got) != "XVTP" {
		t.Errorf("manufacturer %q", got)
	}
	if got := prop(propOwner); !bytes.Equal(got, []byte{0}) {
		t.Errorf("owner %x", got)
	}
	if got := prop(propTISTimeout); len(got) != 16 || binary.BigEndian.Uint32(got) != 750000 {
		t.Errorf("TIS timeouts %x", got)
	}
	if got := prop(propDuration); len(got) != 12 {
		t.Errorf("durations %x", got)
	}
	if got := prop(propInputBuffer); !bytes.Equal(got, u32(bufferMax)) {
		t.Errorf("input buffer %x", got)
	}
	before := binary.BigEndian.Uint32(prop(propAuthSess))
	mustRun(t, tp, ordOIAP)
	if after := binary.BigEndian.Uint32(prop(propAuthSess)); after != before-1 {
		t.Errorf("free sessions %d after OIAP, was %d", after, before)
	}
	wantRC(t, tp, rcBadMode, 0, tagRquCommand, ordGetCapability, u32(capProperty), u32(4), u32(0x1FF))
	wantRC(t, tp, rcBadMode, 0, tagRquCommand, ordGetCapability, u32(capProperty), u32(2), u16(1))
	wantRC(t, tp, rcBadMode, 0, tagRquCommand, ordGetCapability, u32(0x99), u32(0))
}

func TestCapabilityFlagsAndVersion(t *testing.T) {
	tp := startedTPM(t)
	perm := getCap(t, tp, capFlag, u32(capFlagPermanent))
	// tag, then disable, ownership, deactivated, readPubek, ...
	if len(perm) != 22 || binary.BigEndian.Uint16(perm) != tagPermanentFlags ||
		perm[2] != 0 || perm[3] != 1 || perm[4] != 0 || perm[5] != 1 {
		t.Errorf("permanent flags %x", perm)
	}
	vol := getCap(t, tp, capFlag, u32(capFlagVolatile))
	if !bytes.Equal(vol, []byte{0, 0x20, 0, 0, 0, 0, 0}) {
		t.Errorf("volatile flags %x", vol)
	}
	if got := getCap(t, tp, capVersion, nil); !bytes.Equal(got, []byte{1, 1, 0, 0}) {
		t.Errorf("TPM_CAP_VERSION %x", got)
	}
	vv := getCap(t, tp, capVersionVal, nil)
	if len(vv) != 15 || binary.BigEndian.Uint16(vv) != tagCapVersionInfo || vv[2] != 1 || vv[3] != 2 || string(vv[9:13]) != "XVTP" {
		t.Errorf("TPM_CAP_VERSION_VAL %x", vv)
	}
	if got := getCap(t, tp, capKeyHandle, nil); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("key handles %x", got)
	}
	if got := getCap(t, tp, capPID, u16(pidOIAP)); !bytes.Equal(got, []byte{1}) {
		t.Errorf("PID OIAP %x", got)
	}
	if got := getCap(t, tp, capAlg, u32(algRSA)); !bytes.Equal(got, []byte{1}) {
		t.Errorf("ALG RSA %x", got)
	}
}

// TPM_CAP_ORD answers from the command table, and every ordinal it
// denies answers TPM_BAD_ORDINAL.
func TestCapabilityOrdinalsFromTable(t *testing.T) {
	tp := startedTPM(t)
	for ord := uint32(0); ord < 0x200; ord++ {
		supported := getCap(t, tp, capOrd, u32(ord))[0] == 1
		if supported != (commandTable[ord] != nil) {
			t.Errorf("ordinal %#x: TPM_CAP_ORD %v", ord, supported)
		}
		if !supported {
			wantRC(t, tp, rcBadOrdinal, 0, tagRquCommand, ord)
		}
	}
	// TPM 2.0 commands: TPM_BAD_ORDINAL, whatever their tag.
	wantRC(t, tp, rcBadOrdinal, 0, 0x8001, 0x17A, u32(6), u32(0x100), u32(1))
	wantRC(t, tp, rcBadOrdinal, 0, 0x8001, 0x144, u16(0))
}

func TestCapabilityHandles(t *testing.T) {
	tp := startedTPM(t)
	out := mustRun(t, tp, ordOIAP)
	h := binary.BigEndian.Uint32(out)
	got := getCap(t, tp, capHandle, u32(rtAuth))
	if !bytes.Equal(got, append(u16(1), u32(h)...)) {
		t.Errorf("TPM_CAP_HANDLE(TPM_RT_AUTH) %x, want handle %#x", got, h)
	}
	if got := getCap(t, tp, capHandle, u32(rtKey)); !bytes.Equal(got, u16(0)) {
		t.Errorf("TPM_CAP_HANDLE(TPM_RT_KEY) %x", got)
	}
}

// TPM_GetCapabilityOwner: the owner reads the flags as bitmaps, bit i
// the i-th flag of TPM_PERMANENT_FLAGS and TPM_STCLEAR_FLAGS.
func TestGetCapabilityOwner(t *testing.T) {
	tp, _ := ownedTPM(t)
	rc, out := ownerRun(t, tp, testOwner, ordGetCapabilityOwner, nil)
	if rc != rcSuccess || len(out) != 12 {
		t.Fatalf("GetCapabilityOwner: rc %#x %x", rc, out)
	}
	nv, vol := binary.BigEndian.Uint32(out[4:]), binary.BigEndian.Uint32(out[8:])
	const ownership, cmdEnable = 1 << 1, 1 << 8
	if nv&ownership == 0 || nv&cmdEnable == 0 || nv&1 != 0 {
		t.Errorf("non-volatile flags %#x: want ownership and physicalPresenceCMDEnable, not disable", nv)
	}
	if vol != 0 {
		t.Errorf("volatile flags %#x, want none", vol)
	}
	tp.stclear.PhysicalPresenceLock = true
	if _, out := ownerRun(t, tp, testOwner, ordGetCapabilityOwner, nil); binary.BigEndian.Uint32(out[8:]) != 1<<3 {
		t.Errorf("volatile flags %x with physicalPresenceLock", out[8:])
	}
	if rc, _ := ownerRun(t, tp, []byte("not the owner's secret"), ordGetCapabilityOwner, nil); rc != rcAuthFail {
		t.Errorf("wrong owner secret: rc %#x", rc)
	}
}
