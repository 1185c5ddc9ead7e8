// Package options declares the blktest domain's command-line options
// (xl extra=): none of its own, only the domain package's loglevel=. The
// Spec is their documentation too: docs/options.md is generated from it
// (go run ./cmdline/gendoc).
package options

import "github.com/xenvtpm/xenvtpm/cmdline"

// Spec lists the blktest domain's options (loglevel= is added by the domain
// package).
func Spec() cmdline.Spec { return cmdline.Spec{} }
