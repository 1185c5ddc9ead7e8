// Package options declares the manager domain's command-line options
// (xl extra=). They follow Xen's vtpmmgr-stubdom (xen-vtpmmgr(7)) in names,
// forms and defaults, so a manager's xl config carries over. The Spec is
// their documentation too: docs/options.md is generated from it
// (go run ./cmdline/gendoc).
package options

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/xenvtpm/xenvtpm/cmdline"
	"github.com/xenvtpm/xenvtpm/drivers/tpmtis"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/manager"
	"github.com/xenvtpm/xenvtpm/ratelimit"
)

// Spec lists the manager domain's options (loglevel= is added by the domain
// package).
func Spec() cmdline.Spec {
	return cmdline.Spec{
		{Name: "tpmdriver", Check: checkDriver, Form: "tpm_tis|tpmfront", Default: "tpm_tis",
			Help: "how to reach the TPM: the hardware's TIS registers, or this domain's vtpm device (a vTPM domain: nesting, tests)",
			Doc: "`tpm_tis`: the TPM's TIS/PTP FIFO pages, mapped with xl's `iomem=`. `tpmfront`: the TPM 2.0 behind the manager's own `vtpm=` device " +
				"(a nested manager, or a vTPM domain standing in for hardware: `mgrdomain/testbed-nested`); TPM 2.0 only."},
		{Name: "tpmiomem", Check: tpmtis.CheckBase, Form: "ADDR", Default: "0xfed40000",
			Help: "physical address of the TIS locality-0 page",
			Doc:  "The five locality pages must lie in 0xc0000000-0xffffffff."},
		{Name: "tpmirq", Check: tpmtis.CheckIRQ, Form: "0", Default: "0",
			Help: "0: polling (the only mode)",
			Doc:  "The driver takes no interrupts, so any other value is refused rather than silently ignored."},
		{Name: "tpmlocality", Values: []string{"0", "1", "2", "3", "4"}, Default: "0",
			Help: "TPM locality to use",
			Doc: "The default is vtpmmgr's. Use 2 when dom0 keeps locality 0, as xen-vtpmmgr(7) recommends: the storage key is sealed to this locality " +
				"and released only there (on TPM 2.0 with `PolicyLocality`), so dom0's TPM driver cannot unseal it even with the owner's secret and a copy of the disk."},
		{Name: "tpmseize", Values: []string{"0", "1"}, Default: "0",
			Help: "1: seize the TPM from a lower locality firmware left active (aborts that locality's command)",
			Doc: "With 1 the TPM is taken from a lower locality that still holds it after timeout A (firmware such as SeaBIOS leaves locality 0 active and goes away); " +
				"with 0 the manager waits about 30 s more for it, then refuses to start. Only for a TPM nobody else uses."},
		{Name: "tpm2", Values: []string{"0", "1"}, Default: "1",
			Help: "accepted as in vtpmmgr; the TPM family is detected",
			Doc:  "The hardware TPM may be a TPM 2.0 or a TPM 1.2 whatever the value."},
		{Name: "owner_auth", Check: checkAuth, Form: "well-known|hash:<40 hex>|text:<str>", Default: "well-known",
			Help: "owner hierarchy auth",
			Doc: "`text:` is SHA-1 of the string (what `tpm_takeownership` and `swtpm_setup --ownerpass` set). `well-known` is the empty password on TPM 2.0 and 20 zero bytes on TPM 1.2 " +
				"(TrouSerS' `tpm_takeownership -z`; `swtpm_setup --owner-well-known` sets SHA-1 of those zeros instead: `hash:6768033e216468247bd031a0a2d9876d79818f8f`). " +
				"On TPM 2.0 it authorises as an HMAC in a salted session, never in clear on the bus."},
		{Name: "srk_auth", Check: checkAuth, Form: "well-known|hash:<40 hex>|text:<str>", Default: "well-known",
			Help: "SRK (TPM 1.2) / storage primary (TPM 2.0) auth",
			Doc:  "As `owner_auth` (`swtpm_setup --srkpass` sets `text:`)."},
		{Name: "endorsement_auth", Check: checkAuth, Form: "well-known|hash:<40 hex>|text:<str>", Default: "well-known",
			Help: "endorsement hierarchy auth (TPM 2.0): the group attestation keys and the EK need it",
			Doc: "As `owner_auth`; only for a TPM 2.0 whose endorsement authValue was set (`tpm2_changeauth -c e hex:<SHA-1 of the text>` matches `text:`). " +
				"Deep quotes and GROUP_AK/GROUP_ACTIVATE use it, as an HMAC in a salted session."},
		{Name: "sealpcrs", Check: checkPCRs, Form: "default|none|N|X-Y,...", Default: "default",
			Help: "PCRs the storage key is sealed to: default (0,2,4,7), none, or a list",
			Doc: "SHA-256 bank on TPM 2.0, SHA-1 on TPM 1.2. For hosts without a System Approval Agent: once group 0 has an approval list (`xenvtpm group update 0`), " +
				"the key is sealed to the configurations its SAA approved and this option no longer applies (docs/manager-groups.md). " +
				"Without an SAA, before a firmware or boot-loader upgrade boot once with `none`, after it once with the default. " +
				"A change reseals the key at the next start and, on TPM 2.0, then retires the older sealed copies: a copy of the disk taken before is refused and releases the key to nobody."},
		{Name: "autocreate", Check: checkAutocreate, Form: "0|1|group:N", Default: "1",
			Help: "create an unknown vTPM UUID's record on its first SAVEHASHKEY: 1 in group 0, group:N in group N, 0 never",
			Doc: "With 0 a save for a vTPM UUID the manager has no record of is refused with a console line, and the administrator creates vTPMs with " +
				"`xenvtpm vtpm add` (docs/manager-groups.md). 1, the old manager's behaviour, lets any domain the toolstack gives a new UUID have a vTPM."},
		{Name: "admin", Check: checkAdmin, Form: "DOMID[,DOMID...]|none", Default: "0",
			Help: "frontend domains whose management requests (groups, vTPMs: `xenvtpm group`, `xenvtpm vtpm`) are served",
			Doc: "The default is dom0, where `xenvtpm` runs; Xen vouches for a frontend's domain ID. The old manager made the first vTPM " +
				"that connected its administrator instead. `none` refuses every management request."},
		{Name: "hwnvrate", Check: checkRate, Form: "N/s|N/m|N/h|0", Default: manager.DefaultNVWriteRate,
			Help: "cap on hardware NV writes (counter increments, one per group commit of saves) on average: N per second, minute or hour (0: no cap)",
			Doc: "Every group of vTPM saves costs the hardware TPM one NV write (its rollback counter), and hardware NV memory wears out. The default, one every 5 s, " +
				"is at most 6.3 million a year even under a flood; lower it if the TPM's data sheet promises less NV endurance. " +
				"Saves arriving while the cap holds are committed together, one write for all of them; a vTPM's save waits at most 10 s for its write, " +
				"then it is answered `TPM_RETRY` and the vTPM tells its guest `TPM_RC_NV_RATE` (TSS stacks retry it)."},
		{Name: "hwnvburst", Check: checkBurst, Form: "N", Default: strconv.Itoa(manager.DefaultNVWriteBurst),
			Help: "hardware NV writes allowed at once (1-1000000); half of them are kept for vTPMs within their share",
			Doc: "In any time T at most `hwnvburst` + `hwnvrate` × T writes. Half the burst at once and half the rate after are kept for vTPMs within their share, " +
				"so while one vTPM floods, another's save still gets a write at once (docs/manager-storage.md §12.5)."},
	}
}

func checkDriver(s string) error {
	switch s {
	case "tpm_tis", "tpmfront":
		return nil
	}
	return errors.New("want tpm_tis or tpmfront")
}

func checkAuth(s string) error { _, err := hwtpm.ParseAuth(s); return err }
func checkPCRs(s string) error { _, err := hwtpm.ParsePCRs(s); return err }
func checkRate(s string) error { _, err := ratelimit.ParseRate(s); return err }

func checkAutocreate(s string) error { _, _, err := ParseAutocreate(s); return err }
func checkAdmin(s string) error      { _, err := ParseAdmins(s); return err }

// ParseAutocreate reads autocreate=: whether unknown UUIDs are created,
// and in which group.
func ParseAutocreate(s string) (on bool, group uint32, err error) {
	switch s {
	case "0":
		return false, 0, nil
	case "1":
		return true, 0, nil
	}
	if g, ok := strings.CutPrefix(s, "group:"); ok {
		n, err := strconv.ParseUint(g, 10, 32)
		if err == nil {
			return true, uint32(n), nil
		}
	}
	return false, 0, fmt.Errorf("%q: want 0, 1 or group:N", s)
}

// ParseAdmins reads admin=: the domain IDs whose management requests are
// served.
func ParseAdmins(s string) ([]uint32, error) {
	if s == "none" {
		return nil, nil
	}
	var ids []uint32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n >= 0x7FF0 {
			return nil, fmt.Errorf("%q: want domain IDs separated by commas, or none", s)
		}
		ids = append(ids, uint32(n))
	}
	return ids, nil
}

func checkBurst(s string) error {
	if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 1000000 {
		return fmt.Errorf("%q is not a count of NV writes 1-1000000", s)
	}
	return nil
}
