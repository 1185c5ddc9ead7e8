package tpm2

import (
	"slices"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

func ppCommandsRaw(tr transport.TPM, auth uint32, set, clear []uint32) uint32 {
	p := u32(uint32(len(set)))
	for _, cc := range set {
		p = append(p, u32(cc)...)
	}
	p = append(p, u32(uint32(len(clear)))...)
	for _, cc := range clear {
		p = append(p, u32(cc)...)
	}
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCPPCommands), []uint32{auth}, passwordAuth(nil), p))
	return responseCode(rsp)
}

func ppCapList(t *testing.T, tr transport.TPM) []gt.TPMCC {
	t.Helper()
	r, err := (gt.GetCapability{Capability: gt.TPMCapPPCommands, PropertyCount: 64}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.CapabilityData.Data.PPCommands()
	if err != nil {
		t.Fatal(err)
	}
	return l.CommandCodes
}

func ppTestRateAdjust(tr transport.TPM, auth uint32) uint32 {
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCClockRateAdjust), []uint32{auth}, passwordAuth(nil), []byte{0}))
	return responseCode(rsp)
}

// TPM2_PP_Commands needs physical presence, which no host asserts to a
// vTPM; with it, it edits the list GetCapability(TPM_CAP_PP_COMMANDS)
// reports, and a listed command authorized by the platform needs
// physical presence too. The list is durable.
func TestPPCommands(t *testing.T) {
	tp, tr := newStarted(t)
	onlyPP := []gt.TPMCC{gt.TPMCCPPCommands}
	if got := ppCapList(t, tr); !slices.Equal(got, onlyPP) {
		t.Fatalf("initial PP list %v", got)
	}
	if rc := ppCommandsRaw(tr, rhPlatform, []uint32{uint32(gt.TPMCCClockRateAdjust)}, nil); rc != rcPP|0x900 {
		t.Fatalf("PP_Commands without physical presence: rc 0x%x", rc)
	}
	tp.NVChanged()
	tp.physicalPresence = true
	if rc := ppCommandsRaw(tr, rhPlatform, []uint32{uint32(gt.TPMCCClockRateAdjust), uint32(gt.TPMCCGetRandom), 0x1FF, uint32(gt.TPMCCClear)},
		[]uint32{uint32(gt.TPMCCPPCommands), uint32(gt.TPMCCClear)}); rc != rcSuccess {
		t.Fatalf("PP_Commands: rc 0x%x", rc)
	}
	if !tp.NVChanged() {
		t.Error("PP_Commands not reported as a durable change")
	}
	want := []gt.TPMCC{gt.TPMCCPPCommands, gt.TPMCCClockRateAdjust}
	if got := ppCapList(t, tr); !slices.Equal(got, want) {
		t.Fatalf("PP list %v, want %v", got, want)
	}
	if rc := ppTestRateAdjust(tr, rhPlatform); rc != rcSuccess {
		t.Errorf("ClockRateAdjust with physical presence: rc 0x%x", rc)
	}
	tp.physicalPresence = false
	if rc := ppTestRateAdjust(tr, rhPlatform); rc != rcPP|0x900 {
		t.Errorf("listed ClockRateAdjust by the platform without physical presence: rc 0x%x", rc)
	}
	if rc := ppTestRateAdjust(tr, rhOwner); rc != rcSuccess {
		t.Errorf("listed ClockRateAdjust by the owner: rc 0x%x", rc)
	}
	tp2, tr2 := restarted(t, save(t, tp), gt.TPMSUClear)
	if got := ppCapList(t, tr2); !slices.Equal(got, want) {
		t.Fatalf("PP list after Load %v, want %v", got, want)
	}
	tp2.physicalPresence = true
	if rc := ppCommandsRaw(tr2, rhPlatform, nil, []uint32{uint32(gt.TPMCCClockRateAdjust)}); rc != rcSuccess {
		t.Fatalf("PP_Commands clear: rc 0x%x", rc)
	}
	if got := ppCapList(t, tr2); !slices.Equal(got, onlyPP) {
		t.Fatalf("PP list after clearing %v", got)
	}
	if rc := ppCommandsRaw(tr2, rhOwner, nil, nil); rc != rcValue|0x100 {
		t.Errorf("PP_Commands by the owner: rc 0x%x", rc)
	}
}

// TPM2_SetAlgorithmSet keeps its value durably and reports it as
// TPM_PT_ALGORITHM_SET.
func TestSetAlgorithmSet(t *testing.T) {
	tp, tr := newStarted(t)
	set := func(auth, v uint32) uint32 {
		rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCSetAlgorithmSet), []uint32{auth}, passwordAuth(nil), u32(v)))
		return responseCode(rsp)
	}
	prop := func(tr transport.TPM) uint32 {
		r, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTAlgorithmSet), PropertyCount: 1}).Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := r.CapabilityData.Data.TPMProperties()
		return p.TPMProperty[0].Value
	}
	tp.NVChanged()
	if rc := set(rhPlatform, 7); rc != rcSuccess {
		t.Fatalf("SetAlgorithmSet: rc 0x%x", rc)
	}
	if !tp.NVChanged() {
		t.Error("SetAlgorithmSet not reported as a durable change")
	}
	if rc := set(rhOwner, 9); rc != rcValue|0x100 {
		t.Errorf("SetAlgorithmSet by the owner: rc 0x%x", rc)
	}
	if v := prop(tr); v != 7 {
		t.Errorf("TPM_PT_ALGORITHM_SET %d, want 7", v)
	}
	_, tr2 := restarted(t, save(t, tp), gt.TPMSUClear)
	if v := prop(tr2); v != 7 {
		t.Errorf("TPM_PT_ALGORITHM_SET after Load %d, want 7", v)
	}
}
