package tpm2

import (
	gt "github.com/google/go-tpm/tpm2"
)

// Lifecycle commands, Part 3 §9 and §10.

// startupCommand is TPM2_Startup, Part 3 §9.3.
func (t *TPM) startupCommand(c *call, cmd *gt.Startup) (*gt.StartupResponse, error) {
	return nil, t.startup(uint16(cmd.StartupType))
}

// shutdown is TPM2_Shutdown, Part 3 §9.4.
func (t *TPM) shutdown(c *call, cmd *gt.Shutdown) (*gt.ShutdownResponse, error) {
	switch uint16(cmd.ShutdownType) {
	case suClear:
		t.orderly, t.savedVol = false, nil
	case suState:
		t.orderly = true
		t.savedVol = &volatileState{
			PCR:              t.pcr.snapshot(),
			PCRUpdateCounter: t.pcrUpdateCounter,
			ContextKey:       t.contextKey,
			ContextSeq:       t.contextSeq,
			PCRAuth:          t.pcrAuth,
		}
		t.saveCommit(t.savedVol)
	default:
		return nil, rcP(rcValue, 1, "shutdown type %d", cmd.ShutdownType)
	}
	return nil, nil
}

// selfTest is TPM2_SelfTest, Part 3 §10.2.
func (t *TPM) selfTest(c *call, cmd *selfTestCmd) (*emptyResponse, error) {
	return nil, nil
}

// incrementalSelfTest is TPM2_IncrementalSelfTest, Part 3 §10.3.
func (t *TPM) incrementalSelfTest(c *call, cmd *incrementalSelfTestCmd) (*incrementalSelfTestResponse, error) {
	// All algorithms are tested: the to-do list is empty.
	return &incrementalSelfTestResponse{}, nil
}

// getTestResult is TPM2_GetTestResult, Part 3 §10.4.
func (t *TPM) getTestResult(c *call, cmd *getTestResultCmd) (*getTestResultResponse, error) {
	return &getTestResultResponse{TestResult: rcSuccess}, nil
}

// startup implements TPM2_Startup, Part 3 §9.3, after _TPM_Init.
func (t *TPM) startup(su uint16) error {
	switch su {
	case suClear:
		if len(t.ps.PendingBanks) != 0 {
			t.ps.PCRBanks, t.ps.PendingBanks = t.ps.PendingBanks, nil
		}
		if t.orderly && t.savedVol != nil {
			// TPM Restart: Shutdown(STATE) then Startup(CLEAR).
			t.ps.RestartCount++
			t.restoreCommit(t.savedVol)
		} else {
			t.ps.ResetCount++
			t.ps.RestartCount = 0
			t.resetCommit()
		}
		t.pcr.reset(t.ps.PCRBanks, t.locality)
		t.pcrUpdateCounter = 0
		t.pcrAuth = nil
		t.contextKey = t.randBytes(32)
		t.contextSeq = 0
	case suState:
		if !t.orderly || t.savedVol == nil || len(t.ps.PendingBanks) != 0 {
			return rcP(rcValue, 1, "no saved state to resume")
		}
		v := t.savedVol
		t.pcr.restore(t.ps.PCRBanks, v.PCR)
		t.pcrUpdateCounter = v.PCRUpdateCounter
		t.contextKey, t.contextSeq = v.ContextKey, v.ContextSeq
		t.pcrAuth = v.PCRAuth
		t.restoreCommit(v)
		t.ps.RestartCount++
	default:
		return rcP(rcValue, 1, "startup type %d", su)
	}
	if t.lostDA {
		// DA failures of the run before a stop that was not orderly may
		// be lost: count one (the TCG reference implementation's
		// DAStartup), unless DA protection is off or already at lockout.
		t.lostDA = false
		if t.ps.RecoveryTime != 0 && t.ps.FailedTries < t.ps.MaxTries {
			t.ps.FailedTries++
			t.ps.DALastMS = t.clockMS()
		}
	}
	t.nvStartup()
	t.nullSeed = t.randBytes(64)
	t.objects = map[uint32]*object{}
	t.sessions = map[uint32]*session{}
	t.phEnable, t.phEnableNV = true, true
	t.orderly, t.savedVol = false, nil
	// Clock runs from _TPM_Init on, and only moves forward: rebase it
	// here (TPM time restarts at zero, Clock does not).
	t.clockOffsetMS, t.timeOffsetMS = t.clockMS(), 0
	t.clockBase = t.now()
	t.started = true
	return nil
}
