// Package options declares the hostilefront domain's command-line options
// (xl extra=). The Spec is their documentation too: docs/options.md is
// generated from it (go run ./cmdline/gendoc).
package options

import "github.com/xenvtpm/xenvtpm/cmdline"

// Attacks are the misbehaviours the domain can perform, one per run. Each
// has its function in the image's attacks table.
var Attacks = []string{"cancel", "destroy-mid-command", "flood", "length", "never-initialised", "revoke", "states"}

// Spec lists the hostilefront domain's options (loglevel= is added by the
// domain package).
func Spec() cmdline.Spec {
	return cmdline.Spec{
		{Name: "attack", Values: Attacks, Default: "length",
			Help: "the misbehaviour to perform",
			Doc: "`length`: lengths past the page's 4088 bytes of data, and data placed past the page by `nr_extra_pages`; " +
				"`states`: ring states a frontend must not write, and xenbus state changes out of order; " +
				"`cancel`: CANCEL while a slow command runs, right after a fast one, and CANCEL-SUBMIT-CANCEL churn; " +
				"`flood`: 100k notifications with a command pending, then 100k with none; " +
				"`revoke`: take the grant away from the backend, before and after it maps the page; " +
				"`never-initialised`: publish the ring details and stop there; " +
				"`destroy-mid-command`: start a slow command and wait for dom0 to destroy the domain."},
	}
}
