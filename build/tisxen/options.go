package main

// The options are checked on every platform, so the host tests cover them.

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/xenvtpm/xenvtpm/cmdline"
)

// localityPages is how many register pages the TIS decodes from tpmiomem.
const localityPages = 5

func checkIomem(s string) error {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("not a number (want e.g. 0xfed40000): %v", err)
	}
	if v%0x1000 != 0 {
		return errors.New("not page aligned")
	}
	// The board maps 0xC0000000-0xFFFFFFFF uncached; the driver works only
	// there.
	if v < 0xC0000000 || v+localityPages*0x1000 > 1<<32 {
		return errors.New("the five locality pages must lie in 0xc0000000-0xffffffff")
	}
	return nil
}

func checkIRQ(s string) error {
	if s != "0" {
		return errors.New("only tpmirq=0 (polling) is supported: this image takes no TPM interrupts")
	}
	return nil
}

func checkLoops(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1_000_000 {
		return errors.New("want a count from 1 to 1000000")
	}
	return nil
}

var spec = cmdline.Spec{
	{Name: "tpmlocality", Values: []string{"0", "1", "2", "3", "4"}, Default: "0", Help: "TPM locality to use"},
	{Name: "tpmiomem", Check: checkIomem, Default: "0xfed40000", Help: "physical address of the TIS locality-0 page"},
	{Name: "tpmirq", Check: checkIRQ, Default: "0", Help: "0: polling (the only mode)"},
	{Name: "mode", Values: []string{"checks", "load"}, Default: "checks", Help: "full proof, or load at our locality only"},
	{Name: "loops", Check: checkLoops, Default: "200", Help: "commands per figure (checks) or command pairs (load)"},
}
