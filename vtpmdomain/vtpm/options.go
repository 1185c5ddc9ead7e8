// Package vtpm is the vTPM domain's logic, apart from its Xen transport: its
// command-line options (the names of Xen's vtpm-stubdom, xen-vtpm(7)), the
// TPM 2.0 engine instance it serves, and the serialisation of commands from
// its frontends.
package vtpm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xenvtpm/xenvtpm/cmdline"
)

// Startup modes, as vtpm-stubdom's `clear`, `save` and `deactivated`.
const (
	// StartupClear starts the TPM with TPM2_Startup(CLEAR) before serving.
	StartupClear = "clear"
	// StartupSave resumes with TPM2_Startup(STATE) when the last shutdown
	// was orderly, else falls back to CLEAR and says so.
	StartupSave = "save"
	// StartupDeactivated serves the TPM un-started: the guest must send
	// TPM2_Startup itself (as a TPM 2.0 driver with auto-startup does).
	StartupDeactivated = "deactivated"
)

// NumPCRs is the PC Client PCR count.
const NumPCRs = 24

// Options are the vTPM domain's `extra=` settings.
type Options struct {
	Startup string
	// ClearGiven is set when `clear` is on the command line, not merely the
	// default: then a saved state that cannot be loaded or verified is
	// replaced by a fresh TPM instead of refusing to serve.
	ClearGiven bool
	MaintCmds  bool
	// HWInitPCR lists the PCRs to copy from the hardware TPM at start.
	HWInitPCR []int
}

// Spec lists the options for cmdline.Parse (loglevel= is added by the
// domain package).
func Spec() cmdline.Spec {
	return cmdline.Spec{
		{Name: StartupClear, Flag: true, Help: "start the TPM with Startup(CLEAR) (the default); given explicitly, also start a fresh TPM when the saved state cannot be loaded"},
		{Name: StartupSave, Flag: true, Help: "resume with Startup(STATE) after an orderly shutdown"},
		{Name: StartupDeactivated, Flag: true, Help: "leave the TPM un-started for the guest to start"},
		{Name: "maintcmds", Values: []string{"0", "1"}, Default: "0", Help: "TPM 1.2 maintenance ordinals; TPM 2.0 has none, so no effect"},
		{Name: "hwinitpcr", Check: func(s string) error { _, err := ParsePCRSpec(s); return err },
			Help: "PCRs to copy from the hardware TPM at start: all, none, N, X-Y, comma-separated"},
	}
}

// ParseOptions turns parsed values into Options.
func ParseOptions(v cmdline.Values) (Options, error) {
	o := Options{Startup: StartupClear, MaintCmds: v.Get("maintcmds") == "1"}
	n := 0
	for _, m := range []string{StartupClear, StartupSave, StartupDeactivated} {
		if v.Has(m) {
			o.Startup = m
			n++
		}
	}
	o.ClearGiven = v.Has(StartupClear)
	if n > 1 {
		return o, fmt.Errorf("give at most one of clear, save and deactivated")
	}
	if s := v.Get("hwinitpcr"); s != "" {
		pcrs, err := ParsePCRSpec(s)
		if err != nil {
			return o, err
		}
		o.HWInitPCR = pcrs
	}
	return o, nil
}

// ParsePCRSpec parses `all`, `none`, or a comma-separated list of PCR
// numbers and X-Y ranges, returning sorted, distinct PCR indices.
func ParsePCRSpec(s string) ([]int, error) {
	switch s {
	case "none":
		return nil, nil
	case "all":
		all := make([]int, NumPCRs)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	var set [NumPCRs]bool
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := pcrIndex(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = pcrIndex(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("PCR range %q runs backwards", part)
			}
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	var out []int
	for i, on := range set {
		if on {
			out = append(out, i)
		}
	}
	return out, nil
}

func pcrIndex(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= NumPCRs {
		return 0, fmt.Errorf("%q is not a PCR number 0-%d", s, NumPCRs-1)
	}
	return n, nil
}
