package main

// The options are checked on every platform, so the host tests cover them.

import (
	"errors"
	"strconv"

	"github.com/xenvtpm/xenvtpm/cmdline"
	"github.com/xenvtpm/xenvtpm/drivers/tpmtis"
)

func checkLoops(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1_000_000 {
		return errors.New("want a count from 1 to 1000000")
	}
	return nil
}

var spec = cmdline.Spec{
	{Name: "tpmlocality", Values: []string{"0", "1", "2", "3", "4"}, Default: "0", Help: "TPM locality to use"},
	{Name: "tpmiomem", Check: tpmtis.CheckBase, Default: "0xfed40000", Help: "physical address of the TIS locality-0 page"},
	{Name: "tpmirq", Check: tpmtis.CheckIRQ, Default: "0", Help: "0: polling (the only mode)"},
	{Name: "mode", Values: []string{"checks", "load"}, Default: "checks", Help: "full proof, or load at our locality only"},
	{Name: "loops", Check: checkLoops, Default: "200", Help: "commands per figure (checks) or command pairs (load)"},
}
