package conformance

import (
	"fmt"
	"testing"
)

const (
	ordCreateCounter, ordIncrementCounter, ordReadCounter = 0xDC, 0xDD, 0xDE
	ordReleaseCounter, ordReleaseCounterOwner             = 0xDF, 0xE0
)

// createCounter creates a counter with label on an owner OSAP session.
func (c *client) createCounter(label string, secret []byte) string {
	s, e := c.osap(etOwner, 0, c.owner)
	if s == nil {
		return e
	}
	enc := adip(s, s.nonceEven, secret)
	r, out := c.auth1(s, nil, true, ordCreateCounter, nil, append(enc, label...))
	return r + fmt.Sprintf(" %x", out)
}

func counterSteps() []func(*client) diffStep {
	owner := sha1Of([]byte("owner"))
	ctr := sha1Of([]byte("counter"))
	prop := func(c *client, p uint32) string {
		rc, out, e := do(c.tr, ordGetCapability, capArgs(5, u32(p))...)
		return e + fmt.Sprintf("rc=%#x %x", rc, out)
	}
	inc := func(c *client, id uint32, secret []byte) string {
		r, out := c.ownerOIAP(secret, ordIncrementCounter, nil, u32(id))
		return r + fmt.Sprintf(" %x", out)
	}
	read := func(c *client, id uint32) string {
		rc, out, e := do(c.tr, ordReadCounter, u32(id))
		return e + fmt.Sprintf("rc=%#x %x", rc, out)
	}
	return []func(*client) diffStep{
		nvStep("counter properties at manufacture", func(c *client) string {
			return prop(c, 0x10C) + "; " + prop(c, 0x10F) + "; " + prop(c, 0x122)
		}),
		nvStep("ReadCounter before any", func(c *client) string { return read(c, 0) }),
		nvStep("ReadPubek", func(c *client) string { return c.readEK() }),
		nvStep("TakeOwnership", func(c *client) string {
			c.owner, c.srk = owner, make([]byte, 20)
			return c.takeOwnership(5, c.oaep(owner), c.oaep(c.srk), srkParams(0x11, 0, 2048, 2), owner)
		}),
		nvStep("CreateCounter on OIAP", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordCreateCounter, nil, append(ctr, "abcd"...))
			return r
		}),
		nvStep("CreateCounter", func(c *client) string { return c.createCounter("abcd", ctr) }),
		nvStep("CreateCounter a second", func(c *client) string { return c.createCounter("efgh", ctr) }),
		nvStep("counter properties with two", func(c *client) string {
			return prop(c, 0x10C) + "; " + prop(c, 0x122)
		}),
		nvStep("ReadCounter 0 and 1", func(c *client) string { return read(c, 0) + "; " + read(c, 1) + "; " + read(c, 2) }),
		nvStep("IncrementCounter 1", func(c *client) string { return inc(c, 1, ctr) }),
		nvStep("IncrementCounter 1 again", func(c *client) string { return inc(c, 1, ctr) }),
		nvStep("IncrementCounter 0 while 1 is active", func(c *client) string { return inc(c, 0, ctr) }),
		nvStep("IncrementCounter wrong secret", func(c *client) string { return inc(c, 1, owner) }),
		nvStep("active counter", func(c *client) string { return prop(c, 0x122) }),
		nvStep("power cycle, then IncrementCounter 0", func(c *client) string {
			if err := c.tr.init(); err != nil {
				return err.Error()
			}
			rc, _, _ := do(c.tr, ordStartup, u16(1))
			return fmt.Sprintf("Startup rc=%#x; ", rc) + inc(c, 0, ctr) + "; " + read(c, 1)
		}),
		nvStep("ReleaseCounter wrong secret", func(c *client) string {
			r, _ := c.ownerOIAP(owner, ordReleaseCounter, nil, u32(0))
			return r
		}),
		nvStep("ReleaseCounter the active counter", func(c *client) string {
			r, _ := c.ownerOIAP(ctr, ordReleaseCounter, nil, u32(0))
			return r + "; " + read(c, 0) + "; " + prop(c, 0x122) + "; " + inc(c, 1, ctr)
		}),
		nvStep("CreateCounter after a release", func(c *client) string { return c.createCounter("ijkl", ctr) }),
		nvStep("ReleaseCounterOwner", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordReleaseCounterOwner, nil, u32(1))
			return r + "; " + read(c, 1)
		}),
		nvStep("ReleaseCounterOwner unknown", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordReleaseCounterOwner, nil, u32(7))
			return r
		}),
		nvStep("four more counters", func(c *client) string {
			var s string
			for _, l := range []string{"c1", "c2", "c3", "c4"} {
				s += c.createCounter(l+"xx", ctr) + "; "
			}
			return s + prop(c, 0x10C)
		}),
		nvStep("counters until none is free", func(c *client) string {
			var s string
			for _, l := range []string{"d1", "d2", "d3", "d4"} {
				s += c.createCounter(l+"xx", ctr) + "; "
			}
			return s + prop(c, 0x10C)
		}),
		nvStep("OwnerClear releases the counters", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerClear, nil, nil)
			return r + "; " + read(c, 0) + "; " + prop(c, 0x10C)
		}),
	}
}

// TestSwtpm12Counters compares the monotonic counters.
func TestSwtpm12Counters(t *testing.T) {
	runClientSteps(t, newPair(t), counterSteps())
}
