// Package ratelimit rations events over time with token buckets, and
// parses the "N/s", "N/m", "N/h" form in which the domains' options give
// rates. Time is passed in, never read, so callers decide the clock and
// tests use a fake one.
package ratelimit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rate is N events per Per. The zero Rate means unlimited.
type Rate struct {
	N   int
	Per time.Duration
}

// Unlimited reports whether r rations nothing.
func (r Rate) Unlimited() bool { return r.N == 0 || r.Per <= 0 }

// PerSecond is r in events per second (+Inf when unlimited).
func (r Rate) PerSecond() float64 {
	if r.Unlimited() {
		return math.Inf(1)
	}
	return float64(r.N) / r.Per.Seconds()
}

// String gives r as ParseRate reads it.
func (r Rate) String() string {
	switch {
	case r.Unlimited():
		return "0"
	case r.Per == time.Second:
		return fmt.Sprintf("%d/s", r.N)
	case r.Per == time.Minute:
		return fmt.Sprintf("%d/m", r.N)
	case r.Per == time.Hour:
		return fmt.Sprintf("%d/h", r.N)
	}
	return fmt.Sprintf("%d/%v", r.N, r.Per)
}

// maxN bounds N so that every derived figure stays exact in a float64.
const maxN = 1 << 30

// ParseRate reads "N/s", "N/m" or "N/h" (N events per second, minute or
// hour), or "0" for unlimited.
func ParseRate(s string) (Rate, error) {
	if s == "0" {
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/s, N/m or N/h (N per second, minute or hour), or 0 for no limit", s)
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 1 || v > maxN {
		return Rate{}, fmt.Errorf("rate %q: %q is not a count 1-%d", s, n, maxN)
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if per == 0 {
		return Rate{}, fmt.Errorf("rate %q: unit %q is not s, m or h", s, unit)
	}
	return Rate{N: v, Per: per}, nil
}

// Bucket holds up to a burst of tokens and gains them back at a rate: a
// taker gets one when the bucket holds one. It starts full. A nil
// *Bucket is unlimited: it always has a token.
type Bucket struct {
	burst  float64
	perSec float64
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket of burst tokens refilled at r, or nil
// (unlimited) when burst is 0 or r is unlimited.
func NewBucket(burst int, r Rate, now time.Time) *Bucket {
	if burst <= 0 || r.Unlimited() {
		return nil
	}
	return &Bucket{burst: float64(burst), perSec: r.PerSecond(), tokens: float64(burst), last: now}
}

// refill adds what was earned since the last call; a clock that went
// back earns nothing and moves the reference back.
func (b *Bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(b.burst, b.tokens+d.Seconds()*b.perSec)
	}
	b.last = now
}

// Tokens is what the bucket holds at now (Inf for an unlimited one).
func (b *Bucket) Tokens(now time.Time) float64 {
	if b == nil {
		return math.Inf(1)
	}
	b.refill(now)
	return b.tokens
}

// Burst is the bucket's capacity (Inf for an unlimited one).
func (b *Bucket) Burst() float64 {
	if b == nil {
		return math.Inf(1)
	}
	return b.burst
}

// Has reports whether a token is there at now.
func (b *Bucket) Has(now time.Time) bool { return b.Tokens(now) >= 1 }

// Take takes a token if the bucket holds one above floor (at least
// floor+1 tokens), and reports whether it did. Floor 0 takes any token;
// a higher floor keeps a reserve for other takers.
func (b *Bucket) Take(now time.Time, floor float64) bool {
	if b == nil {
		return true
	}
	b.refill(now)
	if b.tokens < floor+1 {
		return false
	}
	b.tokens--
	return true
}

// Spend takes a token whether or not one is there; the bucket does not
// go below empty. For events that must happen anyway but still count.
func (b *Bucket) Spend(now time.Time) {
	if b == nil {
		return
	}
	b.refill(now)
	b.tokens = math.Max(0, b.tokens-1)
}

// Until is how long from now until the bucket holds need tokens (0 if it
// does; need is at most the burst).
func (b *Bucket) Until(now time.Time, need float64) time.Duration {
	if b == nil {
		return 0
	}
	b.refill(now)
	need = math.Min(need, b.burst)
	if b.tokens >= need {
		return 0
	}
	return time.Duration(math.Ceil((need - b.tokens) / b.perSec * float64(time.Second)))
}
