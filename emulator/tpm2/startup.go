package tpm2

import (
	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Lifecycle commands, Part 3 §9 and §10.

// Local structures: go-tpm v0.9.8 has no client structures for these.
type incrementalSelfTestCmd struct {
	ToTest gt.TPMLAlg
}

func (incrementalSelfTestCmd) Command() gt.TPMCC { return gt.TPMCCIncrementalSelfTest }
func (incrementalSelfTestCmd) Execute(transport.TPM, ...gt.Session) (*noResponse, error) {
	return nil, errEngineSide
}

type selfTestCmd struct {
	FullTest gt.TPMIYesNo
}

func (selfTestCmd) Command() gt.TPMCC { return gt.TPMCCSelfTest }
func (selfTestCmd) Execute(transport.TPM, ...gt.Session) (*noResponse, error) {
	return nil, errEngineSide
}

type getTestResultCmd struct{}

func (getTestResultCmd) Command() gt.TPMCC { return gt.TPMCCGetTestResult }
func (getTestResultCmd) Execute(transport.TPM, ...gt.Session) (*noResponse, error) {
	return nil, errEngineSide
}

func init() {
	register(func(t *TPM, c *call, cmd *gt.Startup) (*reply, error) {
		return nil, t.startup(uint16(cmd.StartupType))
	})
	register(func(t *TPM, c *call, cmd *gt.Shutdown) (*reply, error) {
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
			}
		default:
			return nil, rcP(rcValue, 1, "shutdown type %d", cmd.ShutdownType)
		}
		return nil, nil
	})
	register(func(t *TPM, c *call, cmd *selfTestCmd) (*reply, error) {
		return nil, nil
	})
	register(func(t *TPM, c *call, cmd *incrementalSelfTestCmd) (*reply, error) {
		// All algorithms are tested: the to-do list is empty.
		return &reply{params: u32(0)}, nil
	})
	register(func(t *TPM, c *call, cmd *getTestResultCmd) (*reply, error) {
		return &reply{params: append(sized(nil), u32(rcSuccess)...)}, nil
	})
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
		} else {
			t.ps.ResetCount++
			t.ps.RestartCount = 0
		}
		t.pcr.reset(t.ps.PCRBanks, t.locality)
		t.pcrUpdateCounter = 0
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
	t.clockOffsetMS = t.clockMS()
	t.clockBase = t.now()
	t.started = true
	return nil
}
