package tpm2

import (
	"fmt"

	gt "github.com/google/go-tpm/tpm2"
)

// register is the older form of a table row, kept while command families
// move to named handlers in commands.go.
func register[C gt.Command[R, *R], R any](fn func(t *TPM, c *call, cmd *C) (*reply, error), rs ...authRole) {
	d := cmd[C, R](func(*TPM, *call, *C) (*R, error) { return nil, nil }, roles(rs...))
	d.run = func(t *TPM, c *call) (*reply, error) {
		cmd, err := unmarshalParams[C](c)
		if err != nil {
			return nil, err
		}
		return fn(t, c, &cmd)
	}
	d.nv = nvCommands[gt.TPMCC(d.cc)]
	d.lazy = lazyCommands[gt.TPMCC(d.cc)]
	if _, dup := commandTable[d.cc]; dup {
		panic(fmt.Sprintf("tpm2: command 0x%x registered twice", d.cc))
	}
	commandTable[d.cc] = d
}

// lazyCommands are nvCommands whose changes are all written lazily:
// the orderly-shutdown state, the clock, the DA counters.
var lazyCommands = map[gt.TPMCC]bool{
	gt.TPMCCShutdown: true, gt.TPMCCClockSet: true, gt.TPMCCDictionaryAttackLockReset: true,
}

// nvCommands are the commands that may change what the TPM keeps across
// power cycles when they succeed; GetCapability(COMMANDS) reports them
// with TPMA_CC.nv.
var nvCommands = map[gt.TPMCC]bool{
	gt.TPMCCStartup: true, gt.TPMCCShutdown: true, gt.TPMCCEvictControl: true,
	gt.TPMCCNVDefineSpace: true, gt.TPMCCNVUndefineSpace: true, gt.TPMCCNVUndefineSpaceSpecial: true,
	gt.TPMCCNVWrite: true, gt.TPMCCNVIncrement: true, gt.TPMCCNVExtend: true, gt.TPMCCNVSetBits: true,
	gt.TPMCCNVWriteLock: true, gt.TPMCCNVGlobalWriteLock: true, gt.TPMCCNVChangeAuth: true, gt.TPMCCNVReadLock: true,
	gt.TPMCCHierarchyChanegAuth: true, gt.TPMCCHierarchyControl: true, gt.TPMCCSetPrimaryPolicy: true,
	gt.TPMCCClear: true, gt.TPMCCClearControl: true, gt.TPMCCChangeEPS: true, gt.TPMCCChangePPS: true,
	gt.TPMCCDictionaryAttackLockReset: true, gt.TPMCCDictionaryAttackParameters: true,
	gt.TPMCCPCRAllocate: true, gt.TPMCCClockSet: true,
}

// noResponse is the response type of engine-side structures not yet
// moved to engineside.go.
type noResponse = emptyResponse
