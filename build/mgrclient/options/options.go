// Package options declares the mgrclient domain's command-line options
// (xl extra=). The Spec is their documentation too: docs/options.md is
// generated from it (go run ./cmdline/gendoc).
package options

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/xenvtpm/xenvtpm/cmdline"
)

// BlobSize is the 64-byte SAVEHASHKEY form (key ‖ SHA-256 of the state).
const BlobSize = 64

func checkExpect(s string) error {
	if s == "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) < 52 || len(b) > BlobSize {
		return errors.New("want 104 to 128 hex digits (a 52- to 64-byte blob)")
	}
	return nil
}

func checkCode(s string) error {
	var n uint32
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		return errors.New("want a return code in decimal")
	}
	return nil
}

func checkHold(s string) error {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 0 || n > 3600 {
		return errors.New("want 0 to 3600 seconds")
	}
	return nil
}

func checkDevices(s string) error {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 || n > 4000 {
		return errors.New("want 1 to 4000")
	}
	return nil
}

func checkRounds(s string) error {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 || n > 1000 {
		return errors.New("want 1 to 1000")
	}
	return nil
}

// Spec lists the mgrclient domain's options (loglevel= is added by the
// domain package).
func Spec() cmdline.Spec {
	return cmdline.Spec{
		{Name: "save", Values: []string{"0", "1"}, Default: "1",
			Help: "1: SAVEHASHKEY random blobs first; 0: only LOADHASHKEY"},
		{Name: "expect", Check: checkExpect, Form: "HEX",
			Help: "hex blob LOADHASHKEY must return",
			Doc:  "104 to 128 hex digits, as a run printed it on its `MGRCLIENT-SAVED` line; with `save=0` it shows a key survived a manager restart. Absent: what is loaded is not compared."},
		{Name: "rounds", Check: checkRounds, Form: "N", Default: "10",
			Help: "SAVEHASHKEY+LOADHASHKEY round trips to time",
			Doc:  "1 to 1000."},
		{Name: "refused", Check: checkCode, Form: "CODE", Default: "0",
			Help: "non-zero: the first SAVEHASHKEY must be refused with this return code, and nothing else is tried",
			Doc:  "13 (TPM_KEYNOTFOUND): a vTPM the manager does not know, with autocreate=0; 1 (TPM_AUTHFAIL): a group whose SAA did not approve the host."},
		{Name: "hold", Check: checkHold, Form: "SECONDS", Default: "0",
			Help: "stay connected this long before closing (a running vTPM, for dom0 to act on meanwhile)",
			Doc:  "0 to 3600. The client prints `MGRCLIENT-HOLDING` when it starts waiting."},
		{Name: "devices", Check: checkDevices, Form: "N", Default: "1",
			Help: "more than 1: connect to every vtpm device at once (there must be N), hold= them, then every connection saves and loads its own key rounds= times at once",
			Doc:  "1 to 4000. The scale test's client: it prints `MGRCLIENT-CONNECTED`, then `MGRCLIENT-HOLDING`, then one `MGRCLIENT-FIGURE scale` line; node=, save=, expect= and refused= do not apply."},
		{Name: "node", Form: "PATH", Default: "device/vtpm/0",
			Help: "the vtpm device",
			Doc:  "Its xenstore directory, relative to the domain's home or absolute."},
	}
}
