package tpmback

import "time"

// Limits of the lines one frontend can cause by what it writes on its
// page: logBurst at once, then one per logEvery.
const (
	logBurst = 5
	logEvery = 10 * time.Second
)

// logLimit is a token bucket for one frontend's log lines that counts what
// it holds back. It is used by the instance's goroutine only.
type logLimit struct {
	now        func() time.Time
	tokens     int
	last       time.Time // when tokens were last topped up
	started    bool
	suppressed int
}

// allow reports whether a line may be logged now and, if so, how many were
// suppressed since the last one logged (that count is then cleared).
func (l *logLimit) allow() (ok bool, suppressed int) {
	now := l.now()
	if !l.started {
		l.started, l.tokens, l.last = true, logBurst, now
	}
	if n := int(now.Sub(l.last) / logEvery); n > 0 {
		l.tokens = min(logBurst, l.tokens+n)
		l.last = l.last.Add(time.Duration(n) * logEvery)
	}
	if l.tokens == 0 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	return true, l.take()
}

// take returns the count of suppressed lines and clears it.
func (l *logLimit) take() int {
	n := l.suppressed
	l.suppressed = 0
	return n
}
