// Package options declares the tisxen domain's command-line options
// (xl extra=), named and defaulted as Xen's vtpmmgr names them so a
// manager's xl config carries over. The Spec is their documentation too:
// docs/options.md is generated from it (go run ./cmdline/gendoc).
package options

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

// Spec lists the tisxen domain's options (loglevel= is added by the domain
// package).
func Spec() cmdline.Spec {
	return cmdline.Spec{
		{Name: "tpmlocality", Values: []string{"0", "1", "2", "3", "4"}, Default: "0",
			Help: "TPM locality to use",
			Doc:  "The default is vtpmmgr's; the test bed passes 2, which vtpmmgr's manual recommends when dom0 keeps locality 0."},
		{Name: "tpmiomem", Check: tpmtis.CheckBase, Form: "ADDR", Default: "0xfed40000",
			Help: "physical address of the TIS locality-0 page",
			Doc:  "The five locality pages must lie in 0xc0000000-0xffffffff (the board's uncached window)."},
		{Name: "tpmirq", Check: tpmtis.CheckIRQ, Form: "0", Default: "0",
			Help: "0: polling (the only mode)",
			Doc:  "The driver takes no interrupts, so any other value is refused rather than silently ignored."},
		{Name: "mode", Values: []string{"checks", "load"}, Default: "checks",
			Help: "full proof, or load at our locality only",
			Doc: "`checks`: the full proof (build/tisxen/README.md), which also opens a second locality (0, or 2 when `tpmlocality` is not 2) for the PCR 21 locality witness " +
				"and a concurrent run, and locality 4 plus an address without a TPM for the fault paths. " +
				"`load`: only our own locality's page is touched: `loops` GetRandom + PCR_Extend(16) pairs, the Go side of the coexistence test, " +
				"where another OS uses locality 0 and must not see us there."},
		{Name: "loops", Check: checkLoops, Form: "N", Default: "200",
			Help: "commands per figure (checks) or command pairs (load)",
			Doc:  "1 to 1000000."},
	}
}
