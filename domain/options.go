package domain

import "github.com/xenvtpm/xenvtpm/cmdline"

// LogLevelOption is the `loglevel=` option every image accepts.
var LogLevelOption = cmdline.Option{Name: "loglevel", Values: LevelNames, Default: "info",
	Help: "console verbosity", Doc: "`info` says what the domain does as it starts and serves; `debug` adds detail per command and per device event; `error` prints errors only."}

// Spec is the whole command line an image accepts: loglevel= and the
// image's own options.
func Spec(own cmdline.Spec) cmdline.Spec {
	return append(cmdline.Spec{LogLevelOption}, own...)
}
