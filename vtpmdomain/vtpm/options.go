// Package vtpm is the vTPM domain's logic, apart from its Xen transport: its
// command-line options (the names of Xen's vtpm-stubdom, xen-vtpm(7)), the
// engine instance it serves (the TPM 2.0 of emulator/tpm2 or, with tpm=1.2,
// the TPM 1.2 of emulator/tpm12), and the serialisation of commands from
// its frontends.
package vtpm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xenvtpm/xenvtpm/cmdline"
	"github.com/xenvtpm/xenvtpm/ratelimit"
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
	// Family is the TPM family served, Family20 or Family12 (tpm=).
	Family  string
	Startup string
	// ClearGiven is set when `clear` is on the command line, not merely the
	// default: then a saved state that cannot be loaded or verified is
	// replaced by a fresh TPM instead of refusing to serve.
	ClearGiven bool
	MaintCmds  bool
	// PhysicalPresence (pp=1) asserts TPM 1.2 physical presence for the
	// guest after the domain's Startup; otherwise the domain locks it.
	PhysicalPresence bool
	// HWInitPCR lists the PCRs to copy from the hardware TPM at start.
	HWInitPCR []int
	// Localities are those a frontend may send commands at; the zero
	// value is DefaultLocalities.
	Localities Localities
	// SaveBudget is how many saves of guest commands may happen at once;
	// SaveRefill gives them back over time. Past the budget a command
	// that may change durable state is answered TPM_RC_NV_RATE. Zero
	// SaveBudget or an unlimited SaveRefill: no limit.
	SaveBudget int
	SaveRefill ratelimit.Rate
}

// Default save budget: a guest may make 100 changes of durable state in a
// row (provisioning: NV indices, persistent keys, hierarchy
// authorizations), then one every 10 s. Every save costs the manager a
// store commit and, shared with the saves of other vTPMs that arrive at
// the same time, one write of the hardware TPM's NV memory.
const (
	DefaultSaveBudget = 100
	DefaultSaveRefill = "6/m"
)

// Localities is a set of TPM localities 0–255 (TPM 2.0 numbers extended
// localities from 32), bit n for locality n. The zero value stands for
// DefaultLocalities.
type Localities [4]uint64

// DefaultLocalities are 0–3, the localities software can reach on PC
// hardware. Locality 4 is asserted only by the CPU itself during a
// dynamic launch (TCG PC Client PTP), and it alone may reset PCRs 17–19,
// where a D-RTM launch is recorded; a guest that could send at locality 4
// could fake one.
var DefaultLocalities = Localities{0x0F}

// Allows reports whether commands may come at locality l.
func (s Localities) Allows(l uint8) bool {
	if s == (Localities{}) {
		s = DefaultLocalities
	}
	return s[l/64]&(1<<(l%64)) != 0
}

// String lists the set as ParseLocalities reads it ("0-3,32").
func (s Localities) String() string {
	if s == (Localities{}) {
		s = DefaultLocalities
	}
	var parts []string
	for l := 0; l < 256; l++ {
		if !s.Allows(uint8(l)) {
			continue
		}
		end := l
		for end < 255 && s.Allows(uint8(end+1)) {
			end++
		}
		if end == l {
			parts = append(parts, strconv.Itoa(l))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", l, end))
		}
		l = end
	}
	return strings.Join(parts, ",")
}

// ParseLocalities parses a comma-separated list of localities 0–255 and
// X-Y ranges.
func ParseLocalities(s string) (Localities, error) {
	var set Localities
	if strings.Contains(s, "=") {
		return set, fmt.Errorf("per-label lists (vtpm-stubdom's locality=<label>=<list>) need the frontend's XSM label, which this domain does not read: give one list for every frontend, e.g. locality=0-3")
	}
	ls, err := parseNumbers(s, 255, "locality")
	if err != nil {
		return set, err
	}
	for _, l := range ls {
		set[l/64] |= 1 << (l % 64)
	}
	return set, nil
}

// Spec lists the vTPM domain's options (loglevel= is added by the domain
// package). It is their documentation too: docs/options.md is generated
// from it (go run ./cmdline/gendoc).
func Spec() cmdline.Spec {
	return cmdline.Spec{
		{Name: "tpm", Values: []string{Family20, Family12}, Default: Family20,
			Help: "TPM family served to the guest",
			Doc: "1.2 is what stock Linux `xen-tpmfront` drives (it registers every vTPM as a TPM 1.2) and what vtpm-stubdom served. " +
				"The saved state records its family: a state of the other family is refused with one console line, never converted or replaced, `clear` or not."},
		{Name: StartupClear, Flag: true,
			Help: "start the TPM with Startup(CLEAR) (also what happens when none of clear, save, deactivated is given)",
			Doc: "Written out, `clear` also lets the domain discard a saved state that cannot be loaded or verified (a corrupted or replaced disk, a disk of another vTPM, a manager that lost the record) and make a fresh TPM; " +
				"without it such a state is refused with one console line and nothing is written. Give at most one of `clear`, `save` and `deactivated`."},
		{Name: StartupSave, Flag: true,
			Help: "resume with Startup(STATE) after an orderly shutdown",
			Doc:  "After the guest's orderly `Shutdown(STATE)` (with `tpm=1.2`, `TPM_SaveState`); otherwise the TPM starts with CLEAR and the console says so."},
		{Name: StartupDeactivated, Flag: true,
			Help: "leave the TPM un-started for the guest to start",
			Doc:  "The guest must send `TPM2_Startup` (with `tpm=1.2`, `TPM_Startup`) itself (a TPM 2.0 driver with auto-startup does); Linux's `xen-tpmfront` never does, so its guests need `clear` or `save`."},
		{Name: "maintcmds", Values: []string{"0", "1"}, Default: "0",
			Help: "TPM 1.2 maintenance ordinals; accepted, no effect: they are not implemented",
			Doc: "Accepted for compatibility with vtpm-stubdom, whose `maintcmds=1` let TPM_CreateMaintenanceArchive, TPM_LoadMaintenanceArchive, TPM_KillMaintenanceFeature, TPM_LoadManuMaintPub and TPM_ReadManuMaintPub through. " +
				"The TPM 1.2 engine implements none of them, so they answer TPM_BAD_ORDINAL whatever the value; with `maintcmds=1` the console says so once at start. TPM 2.0 has no maintenance commands."},
		{Name: "pp", Values: []string{"0", "1"}, Default: "0",
			Help: "TPM 1.2 physical presence: 1 asserts it for the guest, 0 locks it, until the next TPM_Startup(ST_CLEAR)",
			Doc: "A vTPM has no presence pin; as on a PC, whoever starts the TPM plays the BIOS. With `clear` or `save` this domain does, right after its TPM_Startup: " +
				"with `pp=0` it locks presence (TSC_PhysicalPresence NOTPRESENT|LOCK), so that no software in the guest can assert it until the next Startup(CLEAR); " +
				"with `pp=1` it asserts it (TSC_PhysicalPresence PRESENT) for the guest, which may then enable, activate or clear its TPM (TPM_PhysicalEnable, TPM_PhysicalSetDeactivated, TPM_ForceClear: `tpm_setenable`, `tpm_setactive`, `tpm_clear --force`), " +
				"as a PC user does in the BIOS setup, e.g. to take ownership again after `tpm_clear` left the TPM disabled and deactivated. Give `pp=1` for the boot that needs it, then remove it. " +
				"With `deactivated` the guest's firmware starts the TPM and asserts or locks presence itself (SeaBIOS and OVMF lock it); a guest that disables software presence for good " +
				"(TSC_PhysicalPresence CMD_DISABLE|LIFETIME_LOCK) gives up this recovery, as on a PC. Console lines say what was done. No effect with `tpm=2.0`."},
		{Name: "hwinitpcr", Check: func(s string) error { _, err := ParsePCRSpec(s); return err },
			Form: "all|none|N|X-Y,...", Default: "none",
			Help: "PCRs to copy from the hardware TPM at start",
			Doc: "They are read through the manager (SHA-1 values): the vTPM's SHA-1 bank takes the value, the other banks their reset value extended with it; with `tpm=1.2` the PCR takes the value. " +
				"Needs the manager (a `vtpm=` device whose backend is the manager domain); without it, or when the read fails, the domain refuses to start."},
		{Name: "savebudget", Check: checkBudget, Form: "N", Default: strconv.Itoa(DefaultSaveBudget),
			Help: "saves of guest commands allowed at once (0: no limit); past it a command that may change durable state is answered TPM_RC_NV_RATE (TPM_RETRY with tpm=1.2) until saverefill= gives saves back",
			Doc: "The answer comes before the command runs, and TSS stacks retry it. Every save costs the manager a store commit and, shared with other vTPMs' saves, one write of the hardware TPM's NV memory, " +
				"so the budget keeps a guest from wearing that memory out through the manager. The default lets a guest provision (NV indices, persistent keys, hierarchy authorizations) in one go. Accepts 0 to 1000000."},
		{Name: "saverefill", Check: func(s string) error { _, err := ratelimit.ParseRate(s); return err },
			Form: "N/s|N/m|N/h|0", Default: DefaultSaveRefill,
			Help: "how fast the save budget refills: N per second, minute or hour (0: no limit)",
			Doc:  "The default gives a save back every 10 s."},
		{Name: "locality", Check: func(s string) error { _, err := ParseLocalities(s); return err },
			Form: "N|X-Y,...", Default: DefaultLocalities.String(),
			Help: "localities 0-255 a frontend (a guest, or dom0 passing an HVM guest's on) may send commands at; others are answered TPM_RC_LOCALITY (TPM_BAD_LOCALITY with tpm=1.2)",
			Doc: "A refused command never reaches the TPM. The list holds for every frontend, dom0's too, which passes an HVM guest's TIS locality on. " +
				"The default is what software can reach on PC hardware: locality 4 is asserted only by the CPU during a dynamic launch, and only it may reset PCRs 17–19, " +
				"so a guest given it could fake a D-RTM launch. vtpm-stubdom's per-label form `locality=<label>=<list>` is refused (this domain does not read XSM labels)."},
	}
}

// ParseOptions turns parsed values into Options.
func ParseOptions(v cmdline.Values) (Options, error) {
	o := Options{Family: Family20, Startup: StartupClear, MaintCmds: v.Get("maintcmds") == "1", PhysicalPresence: v.Get("pp") == "1"}
	if v.Get("tpm") == Family12 {
		o.Family = Family12
	}
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
	if s := v.Get("savebudget"); s != "" {
		if err := checkBudget(s); err != nil {
			return o, fmt.Errorf("savebudget=%s: %w", s, err)
		}
		o.SaveBudget, _ = strconv.Atoi(s)
	}
	if s := v.Get("saverefill"); s != "" {
		r, err := ratelimit.ParseRate(s)
		if err != nil {
			return o, fmt.Errorf("saverefill=%s: %w", s, err)
		}
		o.SaveRefill = r
	}
	if s := v.Get("locality"); s != "" {
		ls, err := ParseLocalities(s)
		if err != nil {
			return o, fmt.Errorf("locality=%s: %w", s, err)
		}
		o.Localities = ls
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
	return parseNumbers(s, NumPCRs-1, "PCR")
}

// parseNumbers parses a comma-separated list of numbers 0–max and X-Y
// ranges of them, returning them sorted and distinct.
func parseNumbers(s string, max int, what string) ([]int, error) {
	set := make([]bool, max+1)
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := number(lo, max, what)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = number(hi, max, what); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("%s range %q runs backwards", what, part)
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

func number(s string, max int, what string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("%q is not a %s number 0-%d", s, what, max)
	}
	return n, nil
}

// checkBudget accepts a save budget: 0 (no limit) to 1000000.
func checkBudget(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1000000 {
		return fmt.Errorf("%q is not a count of saves 0-1000000", s)
	}
	return nil
}
