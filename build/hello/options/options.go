// Package options declares the hello domain's command-line options
// (xl extra=). The Spec is their documentation too: docs/options.md is
// generated from it (go run ./cmdline/gendoc).
package options

import "github.com/xenvtpm/xenvtpm/cmdline"

// Spec lists the hello domain's options (loglevel= is added by the domain
// package).
func Spec() cmdline.Spec {
	return cmdline.Spec{
		{Name: "panic", Flag: true,
			Help: "panic on purpose after the banner (tests crash reporting)",
			Doc:  "Shows that a crash reaches the console and ends the domain."},
	}
}
