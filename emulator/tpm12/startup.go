package tpm12

import "maps"

// Startup types, Part 2 §4.5 (TPM_STARTUP_TYPE).
const (
	stClear       uint16 = 0x0001
	stState       uint16 = 0x0002
	stDeactivated uint16 = 0x0003
)

// savedState is what TPM_SaveState preserves for Startup(ST_STATE)
// (Part 3 §3.3): the PCRs that are not resettable and the
// TPM_STCLEAR_FLAGS. Sessions are not preserved: clients start new ones.
type savedState struct {
	PCR     [][]byte
	STClear stclearFlags
	// NVLocks are the NV indices' bReadSTClear and bWriteSTClear.
	NVLocks map[uint32]nvLock `json:",omitempty"`
	// Keys are the loaded keys (loadedkey.go).
	Keys []savedKey `json:",omitempty"`
}

type startupIn struct{ StartupType uint16 }

func (s *startupIn) unmarshal(r *reader) { s.StartupType = r.u16() }

// startup is TPM_Startup, Part 3 §3.2: the first command after
// _TPM_Init, from a clear state, from the state SaveState preserved, or
// deactivated until the next _TPM_Init.
func (t *TPM) startup(_ *call, in *startupIn) (*none, error) {
	if t.started {
		return nil, rcE(rcInvalidPostInit, "Startup after Startup")
	}
	if t.failed {
		return nil, rcE(rcFailedSelfTest, "failure mode")
	}
	saved := t.ps.Saved
	switch in.StartupType {
	case stClear:
		// §3.2 action 2.e: deactivated takes the permanent flag's
		// value, which commands changing that flag affect only from
		// here on (as in libtpms).
		t.stclear = stclearFlags{Deactivated: t.ps.Flags.Deactivated}
		clear(t.nvLocks)
		t.initPCRs()
	case stState:
		if saved == nil || len(saved.PCR) != pcrCount {
			// Part 3 §3.2 action 3.a: nothing to resume from. The TPM
			// answers TPM_FAILEDSELFTEST from now on, as the reference
			// does.
			t.failed = true
			t.dropSaved()
			return nil, rcE(rcFailedSelfTest, "Startup(ST_STATE) without saved state")
		}
		t.initPCRs()
		for i := range t.pcr {
			if !pcrAttrib[i].reset {
				copy(t.pcr[i][:], saved.PCR[i])
			}
		}
		t.stclear = saved.STClear
		clear(t.nvLocks)
		for i, l := range saved.NVLocks {
			if t.nvFind(i) >= 0 && l != (nvLock{}) {
				t.nvLocks[i] = l
			}
		}
		// Load checked the saved keys.
		t.keys, _ = restoreKeys(saved.Keys)
	case stDeactivated:
		t.stclear = stclearFlags{Deactivated: true}
		clear(t.nvLocks)
		t.initPCRs()
	default:
		return nil, rcE(rcBadParameter, "startup type %#x", in.StartupType)
	}
	t.dropSaved()
	t.sessions = map[uint32]*session{}
	t.started = true
	return &none{}, nil
}

// dropSaved discards what SaveState preserved: it serves one Startup.
func (t *TPM) dropSaved() {
	if t.ps.Saved != nil {
		t.ps.Saved = nil
		t.nvDirty = true
	}
}

// saveState is TPM_SaveState, Part 3 §3.3: preserve what
// Startup(ST_STATE) restores, in the durable state the host stores.
func (t *TPM) saveState(_ *call, _ *none) (*none, error) {
	s := &savedState{PCR: make([][]byte, pcrCount), STClear: t.stclear, Keys: t.saveKeys()}
	if len(t.nvLocks) > 0 {
		s.NVLocks = maps.Clone(t.nvLocks)
	}
	for i := range t.pcr {
		s.PCR[i] = append([]byte(nil), t.pcr[i][:]...)
	}
	t.ps.Saved = s
	t.nvDirty = true
	return &none{}, nil
}

// selfTestFull is TPM_SelfTestFull, Part 3 §4.1. The engine's
// algorithms are Go's, with nothing to test at run time; the test
// records that it ran.
func (t *TPM) selfTestFull(_ *call, _ *none) (*none, error) {
	t.tested = true
	return &none{}, nil
}

// continueSelfTest is TPM_ContinueSelfTest, Part 3 §4.2.
func (t *TPM) continueSelfTest(_ *call, _ *none) (*none, error) {
	t.tested = true
	return &none{}, nil
}

// sizedOut is a response of one UINT32-sized byte array.
type sizedOut struct{ Data []byte }

func (s *sizedOut) marshal(w *writer) { w.sized(s.Data) }

// getTestResult is TPM_GetTestResult, Part 3 §4.3. outData is
// manufacturer-specific: a line of text.
func (t *TPM) getTestResult(_ *call, _ *none) (*sizedOut, error) {
	switch {
	case t.failed:
		return &sizedOut{Data: []byte("failure mode")}, nil
	case t.tested:
		return &sizedOut{Data: []byte("self-test passed")}, nil
	}
	return &sizedOut{Data: []byte("self-test not run")}, nil
}
