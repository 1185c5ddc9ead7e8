package tpmback

import "time"

// SetClock replaces the clock of b's log limits; call it before Run.
func SetClock(b *Backend, now func() time.Time) { b.now = now }

// LogBurst is how many lines a frontend's requests may cause at once.
const LogBurst = logBurst

// LogEvery is the pace of the lines after the first LogBurst.
const LogEvery = logEvery
