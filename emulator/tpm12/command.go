package tpm12

import (
	"crypto/sha1"
	"encoding/binary"
)

// authType is how a command is authorized, Part 1 §13: by no session
// (tag TPM_TAG_RQU_COMMAND), one (TPM_TAG_RQU_AUTH1_COMMAND) or two
// (TPM_TAG_RQU_AUTH2_COMMAND).
type authType uint8

const (
	authNone authType = iota
	auth1
	auth2
)

// requestTag is the tag a command authorized so carries.
func (a authType) requestTag() uint16 { return tagRquCommand + uint16(a) }

// The state a command needs besides Startup (Part 1 §9 and the
// "Ordinals" table of Part 2 §17: available when disabled, deactivated,
// without an owner; libtpms names the same checks TPM_CHECK_*).
type stateCheck uint8

const (
	// needsActive: refused with TPM_DISABLED when the TPM is disabled
	// and TPM_DEACTIVATED when it is deactivated.
	needsActive stateCheck = 1 << iota
	// needsOwner: refused with TPM_NOSRK when no owner is installed.
	needsOwner
	// inFailureMode: answered in failure mode (the handler restricts
	// what it returns); every other command gets TPM_FAILEDSELFTEST.
	inFailureMode
	// needsEnabled: refused with TPM_DISABLED when the TPM is disabled,
	// whether or not it is activated.
	needsEnabled
)

// cmdDef is one command as the dispatcher sees it, built from a row of
// the command table (commands.go).
type cmdDef struct {
	ord  uint32
	auth authType
	// handles is the number of leading UINT32 handles, left out of the
	// input parameter digest (Part 1 §13.2 "1S" parameters).
	handles int
	// outHandles is the number of leading UINT32 handles of the
	// response, left out of the output parameter digest.
	outHandles int
	checks     stateCheck
	// nv: the command may change what the TPM keeps across power
	// cycles when it succeeds.
	nv bool
	// optAuth: the command's authorization may be left out.
	optAuth bool
	// minAuth, when fewer is set: the command may also come with as few
	// sessions as minAuth says, each left out from the first.
	minAuth authType
	fewer   bool
	// run decodes the parameters, runs the handler and encodes its
	// result; the state and tag checks sit between decoding and the
	// handler, where the reference (libtpms) makes them, so a malformed
	// command gets the same error from both.
	run func(t *TPM, c *call, p []byte) ([]byte, error)
}

// rowOption adds what a table row says beyond its ordinal and handler.
type rowOption func(d *cmdDef)

// withAuth gives the command's authorization sessions.
func withAuth(a authType) rowOption { return func(d *cmdDef) { d.auth = a } }

// withHandles gives the number of handles that lead the parameters.
func withHandles(n int) rowOption { return func(d *cmdDef) { d.handles = n } }

// outHandles gives the number of handles that lead the response.
func outHandles(n int) rowOption { return func(d *cmdDef) { d.outHandles = n } }

// checks adds state checks.
func checks(s stateCheck) rowOption { return func(d *cmdDef) { d.checks |= s } }

// authOptional marks a command that may also be sent without
// authorization (TPM_TAG_RQU_COMMAND), as the NV commands may.
func authOptional(d *cmdDef) { d.optAuth = true }

// authAtLeast marks a command that may also be sent with fewer
// sessions than its row's, down to a's (TPM_CertifyKey with AUTH1 or
// none, TPM_MakeIdentity with AUTH1).
func authAtLeast(a authType) rowOption {
	return func(d *cmdDef) { d.minAuth, d.fewer = a, true }
}

// sessions reports whether tag is one the command may be sent with and
// how many authorization areas it then carries.
func (d *cmdDef) sessions(tag uint16) (int, bool) {
	lo := d.auth
	if d.optAuth {
		lo = authNone
	}
	if d.fewer {
		lo = d.minAuth
	}
	if tag < lo.requestTag() || tag > d.auth.requestTag() {
		return 0, false
	}
	return int(tag - tagRquCommand), true
}

// writesNV marks a command that may change durable state.
func writesNV(d *cmdDef) { d.nv = true }

// params is a command's parameter structure.
type params interface{ unmarshal(r *reader) }

// results is a command's response parameter structure.
type results interface{ marshal(w *writer) }

// none is the parameter or result structure of a command without any.
type none struct{}

func (*none) unmarshal(*reader) {}
func (*none) marshal(*writer)   {}

// cmd builds the dispatcher's definition of the command with ordinal ord
// from its handler, whose argument is the command's parameter structure
// and whose result is the response's.
func cmd[C any, PC interface {
	*C
	params
}, R results](ord uint32, fn func(*TPM, *call, *C) (R, error), opts ...rowOption) *cmdDef {
	def := &cmdDef{ord: ord}
	for _, o := range opts {
		o(def)
	}
	def.run = func(t *TPM, c *call, p []byte) ([]byte, error) {
		var in C
		r := &reader{b: p}
		PC(&in).unmarshal(r)
		if r.err != nil {
			return nil, r.err
		}
		if r.short {
			return nil, rcE(rcBadParamSize, "ordinal %#x: parameters truncated", ord)
		}
		if err := t.checkState(def, c.tag); err != nil {
			return nil, err
		}
		if _, ok := def.sessions(c.tag); !ok {
			return nil, rcE(rcBadTag, "ordinal %#x: tag %#x", ord, c.tag)
		}
		if len(r.b) != 0 {
			return nil, rcE(rcBadParamSize, "ordinal %#x: %d bytes after the parameters", ord, len(r.b))
		}
		out, err := fn(t, c, &in)
		if err != nil {
			return nil, err
		}
		w := &writer{b: t.rspBuf()}
		out.marshal(w)
		return w.b, nil
	}
	return def
}

// table indexes the rows by ordinal.
func table(rows ...*cmdDef) map[uint32]*cmdDef {
	m := make(map[uint32]*cmdDef, len(rows))
	for _, r := range rows {
		if m[r.ord] != nil {
			panic("tpm12: ordinal in the command table twice")
		}
		m[r.ord] = r
	}
	return m
}

// call is the command in flight.
type call struct {
	tag uint16
	ord uint32
	// inDigest is SHA-1(ordinal || 1S parameters), the input parameter
	// digest the authorization HMACs cover (Part 1 §13.2).
	inDigest digest
	auth     []authArea
}

// authAreaSize is the size of one command authorization area: authHandle,
// nonceOdd, continueAuthSession, authValue (Part 1 §13.2.1).
const authAreaSize = 4 + digestSize + 1 + digestSize

// authArea is one session's part of an authorized command, and what the
// response needs of it once the handler has checked it.
type authArea struct {
	handle   uint32
	nonceOdd digest
	cont     bool
	hmac     digest
	// sess and key are set by authorize: the session and the HMAC key
	// of the response.
	sess *session
	key  digest
}

// rspBuf returns a buffer for response parameters. Allocated per
// response: the engine keeps no response state between commands.
func (t *TPM) rspBuf() []byte { return make([]byte, 10, 64) }

// checkState answers TPM_INVALID_POSTINIT before Startup, the
// dictionary-attack lockout (da.go) for any command sent under an
// authorization tag, as libtpms checks it before the tag, and the state
// checks of the row.
func (t *TPM) checkState(d *cmdDef, tag uint16) error {
	if d.ord == ordStartup {
		return nil // Startup checks postInitialise itself.
	}
	if t.failed {
		// Failure mode outlasts a failed Startup: the commands that
		// answer in it answer whether or not Startup completed.
		if d.checks&inFailureMode == 0 {
			return rcE(rcFailedSelfTest, "failure mode")
		}
		return nil
	}
	if !t.started {
		return rcE(rcInvalidPostInit, "before Startup")
	}
	if tag != tagRquCommand && d.ord != ordResetLockValue && t.lockedOut() {
		return rcE(rcDefendLockRunning, "dictionary-attack lockout")
	}
	if d.checks&(needsActive|needsEnabled) != 0 && t.ps.Flags.Disable {
		return rcE(rcDisabled, "disabled")
	}
	if d.checks&needsActive != 0 {
		if t.ps.Flags.Disable {
			return rcE(rcDisabled, "disabled")
		}
		if t.stclear.Deactivated {
			return rcE(rcDeactivated, "deactivated")
		}
	}
	if d.checks&needsOwner != 0 && !t.ps.Owned {
		return rcE(rcNoSRK, "no owner")
	}
	return nil
}

// execute runs a command whose header has been checked: it splits off
// the authorization areas its tag announces, runs the row, and builds
// the response with its authorization areas.
func (t *TPM) execute(def *cmdDef, tag uint16, body []byte) []byte {
	c := &call{tag: tag, ord: def.ord}
	// The authorization areas are split off only under a tag the row
	// accepts; under any other tag the whole body is parameters, and the
	// row answers TPM_BADTAG once they decode, as a TPM that reads a
	// command front to back does.
	n, _ := def.sessions(tag)
	if len(body) < n*authAreaSize {
		return errorResponse(rcBadParamSize)
	}
	p := body[:len(body)-n*authAreaSize]
	for i := 0; i < n; i++ {
		r := &reader{b: body[len(p)+i*authAreaSize:]}
		a := authArea{handle: r.u32(), nonceOdd: r.digest(), cont: r.bool(), hmac: r.digest()}
		c.auth = append(c.auth, a)
	}
	if n > 0 {
		h := sha1.New()
		_ = binary.Write(h, binary.BigEndian, def.ord)
		if len(p) >= 4*def.handles {
			h.Write(p[4*def.handles:])
		}
		copy(c.inDigest[:], h.Sum(nil))
	}
	out, err := def.run(t, c, p)
	if def.ord == ordStartup {
		// Part 3 §3.2 actions 5 and 6 hold whatever Startup answered:
		// the saved state is gone and the TPM has left its post-init
		// state, so a malformed Startup is not retried (libtpms agrees).
		t.dropSaved()
		t.started = true
	}
	if err != nil {
		// Part 1 §13: a command that fails ends the sessions it used.
		for _, a := range c.auth {
			delete(t.sessions, a.handle)
		}
		return errorResponse(rcOf(err))
	}
	for _, a := range c.auth {
		if a.sess == nil {
			// The handler did not check this session: an engine bug,
			// never an authorized command.
			for _, a := range c.auth {
				delete(t.sessions, a.handle)
			}
			return errorResponse(rcFail)
		}
	}
	params := out[min(10+4*def.outHandles, len(out)):]
	for i := range c.auth {
		out = t.responseAuth(c, &c.auth[i], params, out)
	}
	rspTag := tagRspCommand + uint16(n)
	binary.BigEndian.PutUint16(out[0:], rspTag)
	binary.BigEndian.PutUint32(out[2:], uint32(len(out)))
	binary.BigEndian.PutUint32(out[6:], rcSuccess)
	return out
}
