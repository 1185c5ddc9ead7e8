package conformance

import (
	"fmt"
	"testing"
)

const (
	ordNVDefineSpace, ordNVWriteValue, ordNVWriteValueAuth        = 0xCC, 0xCD, 0xCE
	ordNVReadValue, ordNVReadValueAuth                            = 0xCF, 0xD0
	nvOwnerWrite, nvOwnerRead                              uint32 = 0x2, 0x20000
	nvAuthWrite, nvAuthRead, nvWriteAll                    uint32 = 0x4, 0x40000, 0x1000
)

// nvPub is a TPM_NV_DATA_PUBLIC without PCR restrictions.
func nvPub(index, attrs, size uint32) []byte {
	info := append(append(u16(3), 0, 0, 0, 0x1F), make([]byte, 20)...)
	b := append(u16(0x18), u32(index)...)
	b = append(append(b, info...), info...)
	b = append(append(b, u16(0x17)...), u32(attrs)...)
	b = append(b, 0, 0, 0)
	return append(b, u32(size)...)
}

// define sends NV_DefineSpace without authorization, the index secret
// in the clear.
func (c *client) defineNoAuth(index, attrs, size uint32, secret []byte) string {
	rc, _, e := do(c.tr, ordNVDefineSpace, nvPub(index, attrs, size), secret)
	return e + fmt.Sprintf("rc=%#x", rc)
}

// defineOwner sends NV_DefineSpace on an owner OSAP session.
func (c *client) defineOwner(index, attrs, size uint32, secret []byte) string {
	s, e := c.osap(etOwner, 0, c.owner)
	if s == nil {
		return e
	}
	enc := adip(s, s.nonceEven, secret)
	r, _ := c.auth1(s, nil, true, ordNVDefineSpace, nil, append(nvPub(index, attrs, size), enc...))
	return r
}

func nvWriteArgs(index, offset uint32, data []byte) []byte {
	return append(append(append(u32(index), u32(offset)...), u32(uint32(len(data)))...), data...)
}

func nvReadArgs(index, offset, size uint32) []byte {
	return append(append(u32(index), u32(offset)...), u32(size)...)
}

func nvStep(name string, f func(c *client) string) func(*client) diffStep { return ownerStep(name, f) }

func nvSteps() []func(*client) diffStep {
	idx := sha1Of([]byte("index"))
	owner := sha1Of([]byte("owner"))
	fullRC := func(c *client, ord uint32, parts ...[]byte) string {
		rc, out, e := do(c.tr, ord, parts...)
		return e + fmt.Sprintf("rc=%#x %x", rc, out)
	}
	nvLocked := func(c *client) string {
		rc, out, e := do(c.tr, ordGetCapability, capArgs(4, u32(0x108))...)
		if len(out) < 4+2+16 {
			return e + fmt.Sprintf("rc=%#x", rc)
		}
		return fmt.Sprintf("nvLocked=%d", out[4+2+15])
	}
	return append([]func(*client) diffStep{
		nvStep("nvLocked at manufacture", nvLocked),
		nvStep("DefineSpace without write protection", func(c *client) string { return c.defineNoAuth(0x1000, 0, 8, idx) }),
		nvStep("DefineSpace owner-written, no authorization", func(c *client) string { return c.defineNoAuth(0x1000, nvOwnerWrite, 8, idx) }),
		nvStep("DefineSpace auth-read/write", func(c *client) string {
			return c.defineNoAuth(0x1001, nvAuthWrite|nvAuthRead, 16, idx)
		}),
		nvStep("DefineSpace write-all", func(c *client) string { return c.defineNoAuth(0x1002, nvOwnerWrite|nvWriteAll, 4, idx) }),
		nvStep("DefineSpace size 0, new index", func(c *client) string { return c.defineNoAuth(0x1003, nvOwnerWrite, 0, idx) }),
		nvStep("DefineSpace index 0", func(c *client) string { return c.defineNoAuth(0, nvOwnerWrite, 4, idx) }),
		nvStep("DefineSpace owner and auth write", func(c *client) string {
			return c.defineNoAuth(0x1004, nvOwnerWrite|nvAuthWrite, 4, idx)
		}),
		nvStep("DefineSpace owner and auth read", func(c *client) string {
			return c.defineNoAuth(0x1004, nvOwnerWrite|nvOwnerRead|nvAuthRead, 4, idx)
		}),
		nvStep("DefineSpace D bit before nvLocked", func(c *client) string { return c.defineNoAuth(0x10001005, nvOwnerWrite, 4, idx) }),
		nvStep("DefineSpace bad structure tag", func(c *client) string {
			p := nvPub(0x1006, nvOwnerWrite, 4)
			p[1] = 0x19
			rc, _, e := do(c.tr, ordNVDefineSpace, p, idx)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		nvStep("DefineSpace truncated", func(c *client) string {
			rc, _, e := do(c.tr, ordNVDefineSpace, nvPub(0x1006, nvOwnerWrite, 4)[:30])
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		nvStep("CAP_NV_LIST", func(c *client) string { return fullRC(c, ordGetCapability, capArgs(0x0D, nil)...) }),
		nvStep("CAP_NV_INDEX 0x1001", func(c *client) string { return fullRC(c, ordGetCapability, capArgs(0x11, u32(0x1001))...) }),
		nvStep("CAP_NV_INDEX undefined", func(c *client) string { return fullRC(c, ordGetCapability, capArgs(0x11, u32(0x9999))...) }),
		nvStep("ReadValue fresh index", func(c *client) string { return fullRC(c, ordNVReadValue, nvReadArgs(0x1000, 0, 8)) }),
		nvStep("WriteValue owner-written index, no authorization, unlocked", func(c *client) string {
			return fullRC(c, ordNVWriteValue, nvWriteArgs(0x1000, 2, []byte("abc")))
		}),
		nvStep("ReadValue after write", func(c *client) string { return fullRC(c, ordNVReadValue, nvReadArgs(0x1000, 0, 8)) }),
		nvStep("ReadValue past the end", func(c *client) string { return fullRC(c, ordNVReadValue, nvReadArgs(0x1000, 4, 8)) }),
		nvStep("WriteValue past the end", func(c *client) string {
			return fullRC(c, ordNVWriteValue, nvWriteArgs(0x1000, 6, []byte("abc")))
		}),
		nvStep("WriteValue undefined index", func(c *client) string {
			return fullRC(c, ordNVWriteValue, nvWriteArgs(0x7777, 0, []byte("abc")))
		}),
		nvStep("WriteValue write-all, partial", func(c *client) string {
			return fullRC(c, ordNVWriteValue, nvWriteArgs(0x1002, 0, []byte("ab")))
		}),
		nvStep("WriteValue write-all, whole", func(c *client) string {
			return fullRC(c, ordNVWriteValue, nvWriteArgs(0x1002, 0, []byte("abcd")))
		}),
		nvStep("WriteValue auth-written index without authorization", func(c *client) string {
			return fullRC(c, ordNVWriteValue, nvWriteArgs(0x1001, 0, []byte("abc")))
		}),
		nvStep("ReadValue auth-read index without authorization", func(c *client) string {
			return fullRC(c, ordNVReadValue, nvReadArgs(0x1001, 0, 4))
		}),
		nvStep("before ownership: WriteValueAuth", func(c *client) string {
			r, _ := c.ownerOIAP(idx, ordNVWriteValueAuth, nil, nvWriteArgs(0x1001, 1, []byte("xyz")))
			return r
		}),
		nvStep("before ownership: WriteValueAuth wrong secret", func(c *client) string {
			r, _ := c.ownerOIAP(owner, ordNVWriteValueAuth, nil, nvWriteArgs(0x1001, 1, []byte("xyz")))
			return r
		}),
		nvStep("before ownership: WriteValueAuth to an owner-written index", func(c *client) string {
			r, _ := c.ownerOIAP(idx, ordNVWriteValueAuth, nil, nvWriteArgs(0x1000, 1, []byte("xyz")))
			return r
		}),
		nvStep("before ownership: ReadValueAuth", func(c *client) string {
			r, out := c.ownerOIAP(idx, ordNVReadValueAuth, nil, nvReadArgs(0x1001, 0, 6))
			return r + fmt.Sprintf(" %x", out)
		}),
		nvStep("before ownership: ReadValueAuth wrong secret", func(c *client) string {
			r, _ := c.ownerOIAP(owner, ordNVReadValueAuth, nil, nvReadArgs(0x1001, 0, 6))
			return r
		}),
		nvStep("ReadPubek", func(c *client) string { return c.readEK() }),
		nvStep("TakeOwnership", func(c *client) string {
			c.owner, c.srk = owner, make([]byte, 20)
			return c.takeOwnership(5, c.oaep(owner), c.oaep(c.srk), srkParams(0x11, 0, 2048, 2), owner)
		}),
		nvStep("DefineSpace by the owner", func(c *client) string {
			return c.defineOwner(0x2000, nvOwnerWrite|nvOwnerRead, 8, idx)
		}),
		nvStep("DefineSpace on OIAP", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordNVDefineSpace, nil, append(nvPub(0x2001, nvOwnerWrite, 8), idx...))
			return r
		}),
		nvStep("WriteValueAuth", func(c *client) string {
			r, _ := c.ownerOIAP(idx, ordNVWriteValueAuth, nil, nvWriteArgs(0x1001, 1, []byte("xyz")))
			return r
		}),
		nvStep("WriteValueAuth wrong secret", func(c *client) string {
			r, _ := c.ownerOIAP(owner, ordNVWriteValueAuth, nil, nvWriteArgs(0x1001, 1, []byte("xyz")))
			return r
		}),
		nvStep("WriteValueAuth to an owner-written index", func(c *client) string {
			r, _ := c.ownerOIAP(idx, ordNVWriteValueAuth, nil, nvWriteArgs(0x1000, 1, []byte("xyz")))
			return r
		}),
		nvStep("ReadValueAuth", func(c *client) string {
			r, out := c.ownerOIAP(idx, ordNVReadValueAuth, nil, nvReadArgs(0x1001, 0, 6))
			return r + fmt.Sprintf(" %x", out)
		}),
		nvStep("ReadValueAuth wrong secret", func(c *client) string {
			r, _ := c.ownerOIAP(owner, ordNVReadValueAuth, nil, nvReadArgs(0x1001, 0, 6))
			return r
		}),
		nvStep("WriteValue by the owner", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordNVWriteValue, nil, nvWriteArgs(0x2000, 0, []byte("owned")))
			return r
		}),
		nvStep("WriteValue by the owner to an index not owner-written", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordNVWriteValue, nil, nvWriteArgs(0x1001, 0, []byte("x")))
			return r
		}),
		nvStep("ReadValue by the owner", func(c *client) string {
			r, out := c.ownerOIAP(c.owner, ordNVReadValue, nil, nvReadArgs(0x2000, 0, 8))
			return r + fmt.Sprintf(" %x", out)
		}),
		nvStep("ReadValue by the owner, wrong secret", func(c *client) string {
			r, _ := c.ownerOIAP(idx, ordNVReadValue, nil, nvReadArgs(0x2000, 0, 8))
			return r
		}),
		nvStep("DefineSpace without authorization while owned, unlocked", func(c *client) string {
			return c.defineNoAuth(0x2002, nvOwnerWrite, 4, idx)
		}),
		nvStep("DefineSpace TPM_NV_INDEX_LOCK of size 4", func(c *client) string {
			return c.defineNoAuth(0xFFFFFFFF, 0, 4, idx)
		}),
		nvStep("DefineSpace TPM_NV_INDEX_LOCK", func(c *client) string {
			return c.defineNoAuth(0xFFFFFFFF, 0, 0, idx) + " " + nvLocked(c)
		}),
		nvStep("WriteValue owner-written index, no authorization, locked", func(c *client) string {
			return fullRC(c, ordNVWriteValue, nvWriteArgs(0x1000, 0, []byte("abc")))
		}),
		nvStep("ReadValue owner-read index, no authorization, locked", func(c *client) string {
			return fullRC(c, ordNVReadValue, nvReadArgs(0x2000, 0, 8))
		}),
		nvStep("DefineSpace without authorization, locked", func(c *client) string {
			return c.defineNoAuth(0x2003, nvOwnerWrite, 4, idx)
		}),
		nvStep("DefineSpace D bit, locked", func(c *client) string { return c.defineOwner(0x10002004, nvOwnerWrite, 4, idx) }),
		nvStep("DefineSpace size 0 deletes", func(c *client) string {
			return c.defineOwner(0x2000, nvOwnerWrite|nvOwnerRead, 0, idx) + " " + fullRC(c, ordGetCapability, capArgs(0x0D, nil)...)
		}),
	}, nvLockSteps()...)
}

// nvLockSteps compare the NV locks (Part 3 §20.2 action 14, §20.4 action
// 10, §20.1 action 6) with nvLocked set and an owner installed: the
// codes, the bReadSTClear, bWriteSTClear and bWriteDefine bytes of
// TPM_CAP_NV_INDEX, bGlobalLock in the STCLEAR flags, and what
// SaveState, Startup(ST_STATE) and Startup(ST_CLEAR) do to them.
func nvLockSteps() []func(*client) diffStep {
	const (
		perWriteDefine, perWriteSTClear     uint32 = 0x2000, 0x4000
		perGlobalLock, perReadSTClear       uint32 = 0x8000, 0x80000000
		wdIdx, wsIdx, glIdx, rsIdx, bothIdx        = 0x3000, 0x3001, 0x3002, 0x3003, 0x3004
	)
	idx := sha1Of([]byte("index"))
	write := func(c *client, index uint32, data []byte) string {
		r, _ := c.ownerOIAP(c.owner, ordNVWriteValue, nil, nvWriteArgs(index, 0, data))
		return r
	}
	read := func(c *client, index, size uint32) string {
		r, out := c.ownerOIAP(c.owner, ordNVReadValue, nil, nvReadArgs(index, 0, size))
		return r + fmt.Sprintf(" %x", out)
	}
	capRC := func(c *client, area uint32, sub []byte) string {
		rc, out, e := do(c.tr, ordGetCapability, capArgs(area, sub)...)
		return e + fmt.Sprintf("rc=%#x %x", rc, out)
	}
	startup := func(c *client, st uint16) string {
		if err := c.tr.init(); err != nil {
			return err.Error()
		}
		rc, _, e := do(c.tr, ordStartup, u16(st))
		return e + fmt.Sprintf("rc=%#x", rc)
	}
	checkAll := func(c *client) string {
		return "writedefine: " + write(c, wdIdx, []byte("w")) + "; write-stclear: " + write(c, wsIdx, []byte("w")) +
			"; globallock: " + write(c, glIdx, []byte("w")) + "; read-stclear: " + read(c, rsIdx, 1) +
			"; volatile " + capRC(c, 4, u32(0x109)) + "; " + capRC(c, 0x11, u32(wsIdx)) + "; " + capRC(c, 0x11, u32(rsIdx))
	}
	return []func(*client) diffStep{
		nvStep("locks: define the indices", func(c *client) string {
			return c.defineOwner(wdIdx, nvOwnerWrite|perWriteDefine, 4, idx) + "; " +
				c.defineOwner(wsIdx, nvOwnerWrite|perWriteSTClear, 4, idx) + "; " +
				c.defineOwner(glIdx, nvOwnerWrite|perGlobalLock, 4, idx) + "; " +
				c.defineOwner(rsIdx, nvOwnerWrite|nvOwnerRead|perReadSTClear, 4, idx) + "; " +
				c.defineOwner(bothIdx, perWriteDefine|perWriteSTClear, 4, idx)
		}),
		nvStep("locks: WRITEDEFINE write, then zero-size write", func(c *client) string {
			return write(c, wdIdx, []byte("ab")) + "; " + write(c, wdIdx, nil) + "; " + capRC(c, 0x11, u32(wdIdx))
		}),
		nvStep("locks: WRITEDEFINE locked", func(c *client) string { return write(c, wdIdx, []byte("cd")) }),
		nvStep("locks: WRITEDEFINE index redefined", func(c *client) string {
			return c.defineOwner(wdIdx, nvOwnerWrite|perWriteDefine, 4, idx) + "; " + write(c, wdIdx, []byte("cd")) + "; " + capRC(c, 0x11, u32(wdIdx))
		}),
		nvStep("locks: zero-size write locks again", func(c *client) string { return write(c, wdIdx, nil) }),
		nvStep("locks: WRITE_STCLEAR zero-size write", func(c *client) string {
			return write(c, wsIdx, nil) + "; " + write(c, wsIdx, []byte("x")) + "; " + capRC(c, 0x11, u32(wsIdx))
		}),
		nvStep("locks: WRITE_STCLEAR index not deleted while locked", func(c *client) string {
			return c.defineOwner(wsIdx, nvOwnerWrite|perWriteSTClear, 0, idx)
		}),
		nvStep("locks: index without owner write, zero-size write", func(c *client) string {
			rc, _, e := do(c.tr, ordNVWriteValue, nvWriteArgs(bothIdx, 0, nil))
			rc2, _, _ := do(c.tr, ordNVWriteValue, nvWriteArgs(bothIdx, 0, []byte("x")))
			return e + fmt.Sprintf("rc=%#x then rc=%#x; ", rc, rc2) + capRC(c, 0x11, u32(bothIdx))
		}),
		nvStep("locks: READ_STCLEAR zero-size read", func(c *client) string {
			return read(c, rsIdx, 0) + "; " + read(c, rsIdx, 1) + "; " + capRC(c, 0x11, u32(rsIdx))
		}),
		nvStep("locks: a write unlocks reading", func(c *client) string {
			return write(c, rsIdx, []byte("r")) + "; " + read(c, rsIdx, 1) + "; " + read(c, rsIdx, 0)
		}),
		nvStep("locks: TPM_NV_INDEX0 with data", func(c *client) string {
			rc, _, e := do(c.tr, ordNVWriteValue, nvWriteArgs(0, 0, []byte("x")))
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		nvStep("locks: GLOBALLOCK before bGlobalLock", func(c *client) string { return write(c, glIdx, []byte("g")) }),
		nvStep("locks: TPM_NV_INDEX0 zero-size write sets bGlobalLock", func(c *client) string {
			rc, _, e := do(c.tr, ordNVWriteValue, nvWriteArgs(0, 0, nil))
			return e + fmt.Sprintf("rc=%#x; ", rc) + capRC(c, 4, u32(0x109))
		}),
		nvStep("locks: TPM_NV_INDEX0 by the owner", func(c *client) string { return write(c, 0, nil) }),
		nvStep("locks: GLOBALLOCK after bGlobalLock", func(c *client) string {
			return write(c, glIdx, []byte("g")) + "; " + c.defineOwner(glIdx, nvOwnerWrite|perGlobalLock, 0, idx)
		}),
		nvStep("locks: SaveState, _TPM_Init, Startup(ST_STATE)", func(c *client) string {
			rc, _, e := do(c.tr, ordSaveState)
			return e + fmt.Sprintf("rc=%#x; ", rc) + startup(c, 2)
		}),
		nvStep("locks: after Startup(ST_STATE)", checkAll),
		nvStep("locks: _TPM_Init, GetCapability before Startup, Startup(ST_CLEAR)", func(c *client) string {
			err := c.tr.init()
			rc1, _, e1 := do(c.tr, ordGetCapability, capArgs(4, u32(0x109))...)
			rc2, _, e2 := do(c.tr, ordStartup, u16(1))
			return fmt.Sprintf("%v %s%s rc=%#x rc=%#x", err, e1, e2, rc1, rc2)
		}),
		nvStep("locks: after Startup(ST_CLEAR)", checkAll),
		nvStep("locks: WRITEDEFINE stays locked", func(c *client) string {
			return write(c, wdIdx, []byte("cd")) + "; " + capRC(c, 0x11, u32(wdIdx))
		}),
		nvStep("OwnerClear deletes the owner's indices", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerClear, nil, nil)
			return r + " " + capRC(c, 0x0D, nil)
		}),
	}
}

// TestSwtpm12NV compares the NV commands before and after ownership and
// nvLocked.
func TestSwtpm12NV(t *testing.T) {
	runClientSteps(t, newPair(t), nvSteps())
}
