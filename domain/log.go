// Package domain is what every xenvtpm PVH image starts with: it checks the
// command line against the image's options, logs at the `loglevel=` it was
// given, and connects to xenstore over the ring Xen set up for the domain.
package domain

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Level is a log level, as accepted by `loglevel=`.
type Level int

// Levels in increasing verbosity.
const (
	LevelError Level = iota
	LevelInfo
	LevelDebug
)

// LevelNames are the accepted `loglevel=` values.
var LevelNames = []string{"error", "info", "debug"}

// ParseLevel maps a `loglevel=` value to a Level.
func ParseLevel(s string) (Level, error) {
	for i, n := range LevelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown log level %q (want error, info or debug)", s)
}

// Logger writes leveled lines with the time since boot.
type Logger struct {
	mu    sync.Mutex
	w     io.Writer
	level Level
	start time.Time
	name  string
}

// NewLogger logs to w at level.
func NewLogger(w io.Writer, name string, level Level) *Logger {
	return &Logger{w: w, level: level, start: time.Now(), name: name}
}

func (l *Logger) logf(lv Level, tag, format string, a ...any) {
	if lv > l.level {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "[%9.3f] %s: %s", time.Since(l.start).Seconds(), l.name, tag)
	fmt.Fprintf(l.w, format, a...)
	if n := len(format); n == 0 || format[n-1] != '\n' {
		fmt.Fprintln(l.w)
	}
}

// Errorf logs at error level (always shown).
func (l *Logger) Errorf(format string, a ...any) { l.logf(LevelError, "error: ", format, a...) }

// Infof logs at info level.
func (l *Logger) Infof(format string, a ...any) { l.logf(LevelInfo, "", format, a...) }

// Debugf logs at debug level.
func (l *Logger) Debugf(format string, a ...any) { l.logf(LevelDebug, "debug: ", format, a...) }
