package hwtpm

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Auth is an authorisation secret given as owner_auth= or srk_auth=, in
// Xen vtpmmgr's forms. The zero value is "well-known".
type Auth struct {
	wellKnown bool
	set       bool
	secret    [sha1.Size]byte
}

// WellKnown is the default secret of both options.
var WellKnown = Auth{}

// ParseAuth parses the vtpmmgr forms of owner_auth= and srk_auth=:
//
//   - "well-known" (or empty): the well-known secret;
//   - "hash:<40 hex digits>": the 20-byte secret itself;
//   - "text:<string>": SHA-1 of the string, as vtpmmgr does.
func ParseAuth(s string) (Auth, error) {
	switch {
	case s == "" || s == "well-known":
		return WellKnown, nil
	case strings.HasPrefix(s, "hash:"):
		h := s[len("hash:"):]
		if len(h) != 2*sha1.Size {
			return Auth{}, fmt.Errorf("hwtpm: auth %q: hash: needs exactly %d hex digits, got %d", s, 2*sha1.Size, len(h))
		}
		var a Auth
		if _, err := hex.Decode(a.secret[:], []byte(h)); err != nil {
			return Auth{}, fmt.Errorf("hwtpm: auth %q: %w", s, err)
		}
		a.set = true
		return a, nil
	case strings.HasPrefix(s, "text:"):
		return Auth{set: true, secret: sha1.Sum([]byte(s[len("text:"):]))}, nil
	}
	return Auth{}, fmt.Errorf("hwtpm: auth %q: want well-known, hash:<40 hex digits> or text:<string>", s)
}

// IsWellKnown reports whether a is the well-known secret.
func (a Auth) IsWellKnown() bool { return !a.set }

// TPM12 is the 20-byte TPM 1.2 authorisation data: 20 zero bytes for
// well-known (TPM_WELL_KNOWN_SECRET), as in vtpmmgr.
func (a Auth) TPM12() [sha1.Size]byte { return a.secret }

// TPM2 is the TPM 2.0 authValue. Well-known maps to the empty authValue:
// that is what a TPM 2.0 owner hierarchy and a TCG-template SRK carry out
// of the box, whereas 20 zero bytes would be a different, non-default
// secret on TPM 2.0 (trailing zeros aside). hash: and text: give their 20
// bytes.
func (a Auth) TPM2() []byte {
	if !a.set {
		return nil
	}
	return slices.Clone(a.secret[:])
}

// String never shows the secret.
func (a Auth) String() string {
	if !a.set {
		return "well-known"
	}
	return "<secret>"
}

// MaxPCR is the highest PCR index accepted in a selection: PC Client TPMs
// have 24 PCRs (0–23).
const MaxPCR = 23

// DefaultSealPCRs is the default sealpcrs= selection: PCRs 0, 2, 4 and 7
// of the SHA-256 bank. On a firmware-measured host (TCG PC Client Platform
// Firmware Profile) they hold the firmware code (0), option-ROM code (2),
// the boot manager code, i.e. the boot loader and Xen EFI image (4), and
// the Secure Boot policy (7). Together they say "this firmware booting
// this boot chain", so the storage key is not released to a disk moved to
// another boot chain. The configuration PCRs 1, 3 and 5 are left out
// because they change with harmless settings (boot order, hardware
// inventory, partition table); PCRs 8 and up are left out because the OS
// (dom0) extends them at run time, before or after the manager starts.
var DefaultSealPCRs = []uint{0, 2, 4, 7}

// ParsePCRs parses a sealpcrs= value: "none" (no PCR policy), "default",
// or a comma-separated list of PCR numbers and ranges "a-b", e.g.
// "0,2,4,7" or "0-7". The result is sorted and without duplicates.
func ParsePCRs(s string) ([]uint, error) {
	switch s {
	case "none":
		return []uint{}, nil
	case "", "default":
		return slices.Clone(DefaultSealPCRs), nil
	}
	var out []uint
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 8)
		if err != nil || a > MaxPCR {
			return nil, fmt.Errorf("hwtpm: PCR selection %q: %q is not a PCR number 0..%d", s, lo, MaxPCR)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 8); err != nil || b > MaxPCR || b < a {
				return nil, fmt.Errorf("hwtpm: PCR selection %q: bad range %q", s, part)
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint(i))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// FormatPCRs renders a selection as ParsePCRs accepts it.
func FormatPCRs(pcrs []uint) string {
	if len(pcrs) == 0 {
		return "none"
	}
	s := make([]string, len(pcrs))
	for i, p := range pcrs {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}
