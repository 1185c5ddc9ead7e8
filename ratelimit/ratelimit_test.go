package ratelimit

import (
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"0": {}, "6/m": {6, time.Minute}, "1/s": {1, time.Second}, "600/h": {600, time.Hour},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"", "6", "6/d", "0/m", "-1/s", "x/s", "1/", "/s", "2000000000/s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := NewBucket(3, Rate{N: 1, Per: 10 * time.Second}, t0)
	for i := 0; i < 3; i++ {
		if !b.Take(t0, 0) {
			t.Fatalf("take %d of a full bucket of 3 refused", i)
		}
	}
	if b.Take(t0, 0) || b.Has(t0) {
		t.Fatal("an empty bucket gave a token")
	}
	if d := b.Until(t0, 1); d != 10*time.Second {
		t.Fatalf("Until one token = %v, want 10s", d)
	}
	t1 := t0.Add(25 * time.Second)
	if got := b.Tokens(t1); got != 2.5 {
		t.Fatalf("after 25 s: %v tokens, want 2.5", got)
	}
	// A floor keeps a reserve.
	if !b.Take(t1, 1) || b.Take(t1, 1) {
		t.Fatal("Take above a floor of 1 with 2.5 tokens: want one, then none")
	}
	if !b.Take(t1, 0) {
		t.Fatal("the reserve token refused to a taker without floor")
	}
	// Refill stops at the burst; Spend never goes below empty.
	t2 := t1.Add(time.Hour)
	if got := b.Tokens(t2); got != 3 {
		t.Fatalf("after an hour: %v tokens, want the burst 3", got)
	}
	for i := 0; i < 5; i++ {
		b.Spend(t2)
	}
	if got := b.Tokens(t2); got != 0 {
		t.Fatalf("after spending 5 of 3: %v tokens", got)
	}
	// A clock going back earns nothing.
	if got := b.Tokens(t0); got != 0 {
		t.Fatalf("clock back: %v tokens", got)
	}
	var unlimited *Bucket
	if !unlimited.Take(t0, 5) || unlimited.Until(t0, 1) != 0 || NewBucket(0, Rate{1, time.Second}, t0) != nil || NewBucket(3, Rate{}, t0) != nil {
		t.Fatal("unlimited bucket rations")
	}
}
