package tpm2

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
)

// entity is what a handle refers to, with the data authorization needs
// (Part 1 §19.2: authValue, authPolicy and the object attributes that
// select between them).
type entity struct {
	handle          uint32
	name            []byte
	auth            []byte
	policy          []byte
	policyAlg       gt.TPMIAlgHash
	userWithAuth    bool
	adminWithPolicy bool
	noDA            bool
	obj             *object
	nv              *nvIndex
	sess            *session
	// handleName holds the Name of an entity named by its handle (PCRs,
	// hierarchies, sessions), so resolving one allocates only the entity.
	handleName [4]byte
}

// trimAuth removes trailing zero octets, Part 1 §19.6.5 note: authValues
// compare and key HMACs without them.
func trimAuth(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// resolve maps a handle of the handle area (position n, 1-based) to its
// entity, with the response codes of Part 3 §5.3 for absent entities.
func (t *TPM) resolve(h uint32, n int, anon bool) (*entity, error) {
	e := new(entity)
	if err := t.resolveInto(e, h, n, anon); err != nil {
		return nil, err
	}
	return e, nil
}

// resolveInto is resolve filling e, which the caller owns: a command's
// handle area resolves into its call, so resolving allocates nothing.
func (t *TPM) resolveInto(e *entity, h uint32, n int, anon bool) error {
	*e = entity{handle: h}
	binary.BigEndian.PutUint32(e.handleName[:], h)
	e.name = e.handleName[:]
	switch h >> 24 {
	case htPCR:
		if h >= pcrCount {
			return rcH(rcValue, n, "PCR %d", h)
		}
		e.userWithAuth, e.noDA = true, true
		e.auth = nil
		if pcrInGroup(h) {
			e.auth = t.pcrAuth
			e.policy, e.policyAlg = t.ps.PCRPolicy, gt.TPMIAlgHash(t.ps.PCRPolicyAlg)
		}
	case htPermanent:
		if err := t.resolvePermanent(e, n); err != nil {
			return err
		}
	case htHMAC, htPolicy:
		s := t.sessions[h]
		if s == nil || s.saved {
			return absentHandle(h, activeSessionsMax, n)
		}
		e.sess = s
	case htTransient:
		o := t.objects[h]
		if o == nil {
			return absentHandle(h, loadedObjectsMax, n)
		}
		o.fillEntity(e)
	case htPersistent:
		o := t.ps.persistent[h]
		if o == nil {
			return rcH(rcHandle, n, "persistent 0x%08x not defined", h)
		}
		if !t.hierarchyEnabled(o.hierarchy) {
			return rcH(rcHierarchy, n, "hierarchy of 0x%08x disabled", h)
		}
		o.fillEntity(e)
	case htNVIndex:
		nv := t.ps.nv[h]
		if nv == nil {
			return rcH(rcHandle, n, "NV index 0x%08x not defined", h)
		}
		if !t.nvAccessible(nv) {
			return rcH(rcHandle, n, "NV index 0x%08x: its hierarchy is disabled", h)
		}
		nv.fillEntity(e)
	default:
		return rcH(rcHandle, n, "handle 0x%08x", h)
	}
	if anon {
		e.name = nil
	}
	return nil
}

// absentHandle is the error for a transient or session handle with
// nothing loaded behind it, as the reference implementation reports it:
// TPM_RC_VALUE when the handle is outside the slot range (it fails
// unmarshalling), TPM_RC_REFERENCE_Hn when the slot is merely empty. The
// Linux resource manager relies on the latter to notice flushed objects.
func absentHandle(h uint32, slots, n int) error {
	if h&0x00FFFFFF >= uint32(slots) {
		return rcH(rcValue, n, "handle 0x%08x out of range", h)
	}
	return rcE(rcReferenceH0+uint32(n-1), "nothing loaded at 0x%08x", h)
}

func (t *TPM) resolvePermanent(e *entity, n int) error {
	e.userWithAuth = true
	switch e.handle {
	case rhOwner:
		if !t.ps.ShEnable {
			return rcH(rcHierarchy, n, "owner hierarchy disabled")
		}
		e.auth, e.policy, e.policyAlg = t.ps.OwnerAuth, t.ps.OwnerPolicy, gt.TPMIAlgHash(t.ps.OwnerPolicyAlg)
		e.noDA = true
	case rhEndorsement:
		if !t.ps.EhEnable {
			return rcH(rcHierarchy, n, "endorsement hierarchy disabled")
		}
		e.auth, e.policy, e.policyAlg = t.ps.EndorsementAuth, t.ps.EndorsementPolicy, gt.TPMIAlgHash(t.ps.EndorsementPolicyAlg)
		e.noDA = true
	case rhPlatform, rhPlatformNV:
		if !t.phEnable {
			return rcH(rcHierarchy, n, "platform hierarchy disabled")
		}
		e.auth, e.policy, e.policyAlg = t.ps.PlatformAuth, t.ps.PlatformPolicy, gt.TPMIAlgHash(t.ps.PlatformPolicyAlg)
		e.noDA = true
	case rhLockout:
		e.auth, e.policy, e.policyAlg = t.ps.LockoutAuth, t.ps.LockoutPolicy, gt.TPMIAlgHash(t.ps.LockoutPolicyAlg)
	case rhNull:
		e.noDA = true
	default:
		return rcH(rcValue, n, "permanent handle 0x%08x", e.handle)
	}
	return nil
}

// bindSessions looks up the sessions of the authorization area and checks
// their attributes against the command (Part 3 §5.4).
func (t *TPM) bindSessions(c *call) error {
	decrypts, encrypts, audits := 0, 0, 0
	for i, a := range c.auths {
		n := i + 1
		if a.attrs&0x18 != 0 {
			return rcS(rcReservedBits, n, "reserved session attributes")
		}
		if a.handle == rsPW {
			if i >= c.def.nAuth {
				return rcS(rcValue, n, "password session without an authorization handle")
			}
			if a.attrs&(saDecrypt|saEncrypt|saAudit) != 0 {
				return rcS(rcAttributes, n, "password session with decrypt/encrypt/audit")
			}
			if len(a.nonce) != 0 {
				return rcS(rcNonce, n, "password session with a nonce")
			}
			continue
		}
		ht := a.handle >> 24
		if ht != htHMAC && ht != htPolicy {
			return rcS(rcHandle, n, "not a session handle 0x%08x", a.handle)
		}
		s := t.sessions[a.handle]
		if s == nil {
			return rcE(rcReferenceS0+uint32(i), "session 0x%08x not loaded", a.handle)
		}
		for j := 0; j < i; j++ {
			if c.auths[j].handle == a.handle {
				return rcS(rcValue, n, "session used twice")
			}
		}
		a.sess = s
		if a.attrs&saDecrypt != 0 {
			decrypts++
			if !c.def.decrypt || decrypts > 1 {
				return rcS(rcAttributes, n, "decrypt not allowed")
			}
			if s.sym.Algorithm == gt.TPMAlgNull {
				return rcS(rcSymmetric, n, "decrypt on a session without a cipher")
			}
		}
		if a.attrs&saEncrypt != 0 {
			encrypts++
			if !c.def.encrypt || encrypts > 1 {
				return rcS(rcAttributes, n, "encrypt not allowed")
			}
			if s.sym.Algorithm == gt.TPMAlgNull {
				return rcS(rcSymmetric, n, "encrypt on a session without a cipher")
			}
		}
		if a.attrs&saAudit != 0 {
			audits++
			if audits > 1 {
				return rcS(rcAttributes, n, "more than one audit session")
			}
			// A session starting (or restarting) its audit becomes the
			// exclusive one with this command, so it passes the check.
			starting := s.auditDigest == nil || a.attrs&saAuditReset != 0
			if a.attrs&saAuditExclusive != 0 && t.exclusiveAudit != a.handle && !starting {
				return rcE(rcExclusive, "audit session is not exclusive")
			}
		} else if a.attrs&(saAuditExclusive|saAuditReset) != 0 {
			return rcS(rcAttributes, n, "auditExclusive/auditReset without audit")
		}
		// Only StartAuthSession bounds nonceCaller below (Part 3 §11.1);
		// in a command's session it may be empty, as the reference
		// implementation and libtpms accept and tpm2-tools and FAPI send
		// after PolicyPassword. Above, TPM2B_NONCE's own bound applies.
		if len(a.nonce) > maxDigestBytes {
			return rcS(rcSize, n, "nonceCaller size %d", len(a.nonce))
		}
	}
	return nil
}

// cpHash is Part 1 §18.7: H(commandCode || names || parameters), over the
// parameters as received (still encrypted).
func (c *call) cpHash(h crypto.Hash) []byte {
	d := h.New()
	d.Write(u32(c.def.cc))
	for _, n := range c.names {
		d.Write(n)
	}
	d.Write(c.rawParams)
	return d.Sum(nil)
}

func sessionHMAC(h crypto.Hash, key, pHash, nonceNewer, nonceOlder, extra []byte, attrs byte) []byte {
	m := hmac.New(h.New, key)
	m.Write(pHash)
	m.Write(nonceNewer)
	m.Write(nonceOlder)
	m.Write(extra)
	m.Write([]byte{attrs})
	return m.Sum(nil)
}

// policyRequired reports whether role on e can only be satisfied by a
// policy session, Part 1 §19.7 (userWithAuth, adminWithPolicy, DUP).
func policyRequired(e *entity, role authRole) bool {
	if e.nv != nil {
		// NV ADMIN operations are authorized by the index policy only
		// (Part 1 §37.3).
		return role == roleAdmin
	}
	if e.obj == nil {
		return false
	}
	switch role {
	case roleAdmin:
		return e.adminWithPolicy
	case roleDup:
		return true
	default:
		return !e.userWithAuth
	}
}

// authValueKey is the part of the session HMAC key contributed by the
// authorized entity (Part 1 §19.6.8/19.6.9).
func authValueKey(s *session, e *entity) []byte {
	if e == nil {
		return nil
	}
	if s.isPolicy() {
		if s.authValueNeeded {
			return trimAuth(e.auth)
		}
		return nil
	}
	if s.boundTo(e) {
		return nil
	}
	return trimAuth(e.auth)
}

// extraNonces are the nonceTPMs of the decrypt and encrypt sessions when
// those are not the first session; the first session's command HMAC
// covers them (Part 1 §19.6.5, nonceTPMdecrypt and nonceTPMencrypt).
func (c *call) extraNonces() []byte {
	var dec, enc *session
	for _, a := range c.auths[1:] {
		if a.sess == nil {
			continue
		}
		if a.attrs&saDecrypt != 0 {
			dec = a.sess
		}
		if a.attrs&saEncrypt != 0 {
			enc = a.sess
		}
	}
	var b []byte
	if dec != nil {
		b = append(b, dec.nonceTPM...)
	}
	if enc != nil && enc != dec {
		b = append(b, enc.nonceTPM...)
	}
	return b
}

func (t *TPM) checkAuths(c *call, ents []*entity) error {
	c.authEnt = c.authEnts[:len(c.auths)]
	for i := 0; i < c.def.nAuth; i++ {
		a, e, n := c.auths[i], ents[i], i+1
		var extra []byte
		if i == 0 && len(c.auths) > 1 {
			extra = c.extraNonces()
		}
		c.authEnt[i] = e
		// Physical presence comes before anything else about the
		// authorization, as in the reference implementation.
		if e.handle == rhPlatform && !t.physicalPresence && t.ppRequired(c.def.cc) {
			return rcS(rcPP, n, "physical presence required")
		}
		if !e.noDA && t.daLocked(e) {
			return rcE(rcLockout, "dictionary-attack lockout")
		}
		if e.nv != nil {
			if err := e.nv.checkAuthAllowed(c.def.cc, a, c.def.roles[i]); err != nil {
				return err
			}
		}
		if err := t.checkAuth(c, a, e, n, extra); err != nil {
			return err
		}
	}
	return nil
}

// checkAuth checks one authorization of entity e by session n, and
// updates e's pinCount when e is a PIN index whose authValue the
// session used, whatever the outcome (Part 1 §37.4.5; the reference
// implementation does it in CheckAuthSession). A changed pinCount is
// durable state, as any NV write.
func (t *TPM) checkAuth(c *call, a *authCmd, e *entity, n int, extra []byte) error {
	err := t.checkAuthValue(c, a, e, n, extra)
	// Only the outcome of the authValue check counts: success,
	// TPM_RC_AUTH_FAIL or TPM_RC_BAD_AUTH (with the session number).
	rc := rcOf(err) &^ 0xF00
	checked := err == nil || rc == rcAuthFail || rc == rcBadAuth
	if e.nv != nil && checked && nvAuthCommands[c.def.cc] && authValueUsed(a.sess, e) && e.nv.pinAuthUsed(err == nil) {
		t.nvCheck = true
	}
	return err
}

// authValueUsed reports whether authorizing e in session s involves e's
// authValue: always with a password, in an HMAC session unless it is
// bound to e, in a policy session after PolicyAuthValue or
// PolicyPassword.
func authValueUsed(s *session, e *entity) bool {
	switch {
	case s == nil:
		return true
	case s.isPolicy():
		return s.passwordNeeded || s.authValueNeeded
	default:
		return !s.boundTo(e)
	}
}

// checkAuthValue checks the authorization session n gives for e: a
// password, an HMAC, or a policy session with what it asserts.
func (t *TPM) checkAuthValue(c *call, a *authCmd, e *entity, n int, extra []byte) error {
	needPolicy := policyRequired(e, c.def.roles[n-1])
	// A password or HMAC session where the role itself demands a policy
	// session (DUP, ADMIN with adminWithPolicy or on an NV index) is the
	// wrong type of session; where the entity's attributes rule its
	// authValue out (userWithAuth clear, or an object loaded without its
	// sensitive area), the authValue is unavailable. The reference
	// implementation draws this line.
	sessionType := func() error {
		if needPolicy && c.def.roles[n-1] != roleUser {
			return rcE(rcAuthType, "the role needs a policy session")
		}
		return rcE(rcAuthUnavailable, "no authValue: policy session required")
	}
	noAuthValue := needPolicy || (e.obj != nil && e.obj.publicOnly)
	s := a.sess
	switch {
	case s == nil:
		if noAuthValue {
			return sessionType()
		}
		if subtle.ConstantTimeCompare(trimAuth(a.hmac), trimAuth(e.auth)) != 1 {
			return t.authFailure(e, n)
		}
	case !s.isPolicy():
		if noAuthValue {
			return sessionType()
		}
		key := append(append([]byte{}, s.sessionKey...), authValueKey(s, e)...)
		want := sessionHMAC(s.hash, key, c.cpHash(s.hash), a.nonce, s.nonceTPM, extra, a.attrs)
		if !hmac.Equal(want, a.hmac) {
			return t.authFailure(e, n)
		}
	default:
		// Nor has such an object, or a sequence, a policy.
		if e.obj != nil && (e.obj.publicOnly || e.obj.seq != nil) {
			return rcE(rcAuthUnavailable, "no authPolicy")
		}
		if err := t.checkPolicy(c, s, e, n); err != nil {
			return err
		}
		switch {
		case s.passwordNeeded:
			if subtle.ConstantTimeCompare(trimAuth(a.hmac), trimAuth(e.auth)) != 1 {
				return t.authFailure(e, n)
			}
		case s.authValueNeeded:
			key := append(append([]byte{}, s.sessionKey...), trimAuth(e.auth)...)
			want := sessionHMAC(s.hash, key, c.cpHash(s.hash), a.nonce, s.nonceTPM, extra, a.attrs)
			if !hmac.Equal(want, a.hmac) {
				return t.authFailure(e, n)
			}
		default:
			// Without PolicyAuthValue/PolicyPassword the policy alone
			// authorizes; an HMAC, if sent, must still be right.
			if len(a.hmac) != 0 {
				want := sessionHMAC(s.hash, s.sessionKey, c.cpHash(s.hash), a.nonce, s.nonceTPM, extra, a.attrs)
				if !hmac.Equal(want, a.hmac) {
					return rcS(rcAuthFail, n, "policy session HMAC")
				}
			}
		}
	}
	return nil
}

// checkPolicy verifies that policy session s satisfies e's authPolicy for
// this command (Part 1 §19.7.2 and the deferred checks of Part 3 §23).
func (t *TPM) checkPolicy(c *call, s *session, e *entity, n int) error {
	if s.trial {
		return rcS(rcAuthType, n, "trial session cannot authorize")
	}
	if len(e.policy) == 0 || e.policyAlg != s.hashAlg || !bytes.Equal(e.policy, s.policyDigest) {
		return rcS(rcPolicyFail, n, "policy digest mismatch")
	}
	if s.timeoutMS != 0 && s.timeoutMS < t.timeMS() {
		return rcS(rcExpired, n, "policy authorization expired")
	}
	if s.commandCode != 0 && s.commandCode != c.def.cc {
		return rcS(rcPolicyCC, n, "policy bound to another command")
	}
	// A policy for the ADMIN or DUP role names its command: without
	// PolicyCommandCode it could stand for any of them (Part 1 §19.2).
	if s.commandCode == 0 && n <= len(c.def.roles) && c.def.roles[n-1] != roleUser {
		return rcS(rcPolicyFail, n, "an ADMIN or DUP policy without PolicyCommandCode")
	}
	if !localityAllowed(s.commandLocality, t.locality) {
		return rcE(rcLocality, "policy allows localities %#x, command at locality %d", s.commandLocality, t.locality)
	}
	if s.pcrCounterSet && s.pcrCounter != t.pcrUpdateCounter {
		return rcE(rcPCRChanged, "PCRs changed since PolicyPCR")
	}
	if len(s.cpHashA) != 0 && !bytes.Equal(s.cpHashA, c.cpHash(s.hash)) {
		return rcS(rcPolicyFail, n, "cpHash mismatch")
	}
	if len(s.nameHash) != 0 {
		d := s.hash.New()
		for _, nm := range c.names {
			d.Write(nm)
		}
		if !bytes.Equal(s.nameHash, d.Sum(nil)) {
			return rcS(rcPolicyFail, n, "nameHash mismatch")
		}
	}
	if len(s.templateHash) != 0 && !bytes.Equal(s.templateHash, templateOf(c, s.hash)) {
		return rcS(rcPolicyFail, n, "command does not create an object from the policy's template")
	}
	if s.isPPRequired && !t.physicalPresence {
		return rcS(rcPP, n, "physical presence required")
	}
	// PolicyNvWritten is a condition on the index being authorized, as
	// it is now (Part 3 §23.20, TPM2_PolicyNvWritten): a write-once
	// policy stops working once the index is written.
	if s.nvWrittenSet && (e.nv == nil || e.nv.pub.Attributes.Written != s.nvWritten) {
		return rcS(rcPolicyFail, n, "PolicyNvWritten(%v) does not hold", s.nvWritten)
	}
	return nil
}

// localityAllowed applies a policy's TPMA_LOCALITY to the locality a
// command came from (Part 3 §23.8, TPM2_PolicyLocality): below 32 a set
// of localities 0–4, from 32 one extended locality; 0 allows any.
func localityAllowed(set, locality uint8) bool {
	switch {
	case set == 0:
		return true
	case locality < 5:
		return set < 32 && set&(1<<locality) != 0
	case locality >= 32:
		return set == locality
	}
	return false
}

// sessionValue is the key material for parameter encryption, Part 1
// §21.1: sessionKey plus the authorized entity's authValue.
func sessionValue(c *call, i int) []byte {
	s := c.auths[i].sess
	v := append([]byte{}, s.sessionKey...)
	if i < len(c.authEnt) && c.authEnt[i] != nil {
		v = append(v, authValueKey(s, c.authEnt[i])...)
	}
	return v
}

// cryptParam applies session parameter protection to p in place.
func cryptParam(s *session, value, nonceNewer, nonceOlder, p []byte, decrypt bool) error {
	switch s.sym.Algorithm {
	case gt.TPMAlgXOR:
		mask := gt.KDFa(s.hash, value, "XOR", nonceNewer, nonceOlder, len(p)*8)
		subtle.XORBytes(p, p, mask)
		return nil
	case gt.TPMAlgAES:
		bits, err := s.sym.KeyBits.AES()
		if err != nil {
			return rcE(rcSymmetric, "session cipher: %v", err)
		}
		kb := int(*bits) / 8
		keyIV := gt.KDFa(s.hash, value, "CFB", nonceNewer, nonceOlder, (kb+16)*8)
		blk, err := aes.NewCipher(keyIV[:kb])
		if err != nil {
			return rcE(rcSymmetric, "session cipher: %v", err)
		}
		if decrypt {
			cipher.NewCFBDecrypter(blk, keyIV[kb:]).XORKeyStream(p, p)
		} else {
			cipher.NewCFBEncrypter(blk, keyIV[kb:]).XORKeyStream(p, p)
		}
		return nil
	}
	return rcE(rcSymmetric, "session cipher 0x%x", uint16(s.sym.Algorithm))
}

func (t *TPM) decryptParams(c *call) error {
	for i, a := range c.auths {
		if a.attrs&saDecrypt == 0 {
			continue
		}
		if len(c.params) < 2 {
			return rcP(rcInsufficient, 1, "decrypt: no first parameter")
		}
		n := int(binary.BigEndian.Uint16(c.params))
		if 2+n > len(c.params) {
			return rcP(rcSize, 1, "decrypt: first parameter size %d", n)
		}
		p := append([]byte{}, c.params...)
		if err := cryptParam(a.sess, sessionValue(c, i), a.nonce, a.sess.nonceTPM, p[2:2+n], true); err != nil {
			return err
		}
		c.params = p
	}
	return nil
}

// encryptParams rolls nonceTPM for every session (the response is
// computed with the new nonce) and encrypts the first response parameter.
func (t *TPM) encryptParams(c *call, params []byte) []byte {
	for _, a := range c.auths {
		if a.sess != nil {
			a.sess.nextNonce = t.randBytes(len(a.sess.nonceTPM))
		}
	}
	for i, a := range c.auths {
		if a.attrs&saEncrypt == 0 || len(params) < 2 {
			continue
		}
		n := int(binary.BigEndian.Uint16(params))
		if 2+n > len(params) {
			continue
		}
		p := append([]byte{}, params...)
		if err := cryptParam(a.sess, sessionValue(c, i), a.sess.nextNonce, a.nonce, p[2:2+n], false); err == nil {
			params = p
		}
	}
	return params
}

// appendResponseAuths appends the response authorization area (Part 1
// §18.9) to out and retires sessions whose continueSession was clear.
func (t *TPM) appendResponseAuths(out []byte, c *call, params []byte) []byte {
	// The response HMAC uses the entity's authValue as it is after the
	// command: HierarchyChangeAuth and NV_ChangeAuth answer under the new
	// value (Part 1 §19.6.12). A password authorization has no response
	// HMAC, so its entity is not looked up again.
	for i := range c.authEnt {
		if i < len(c.handles) && c.authEnt[i] != nil && i < len(c.auths) && c.auths[i].sess != nil {
			if e, err := t.resolve(c.handles[i], i+1, false); err == nil {
				e.name = c.authEnt[i].name
				c.authEnt[i] = e
			}
		}
	}
	t.audit(c, params)
	for i, a := range c.auths {
		s := a.sess
		if s == nil {
			out = append(out, 0, 0, saContinueSession, 0, 0)
			continue
		}
		s.nonceTPM = s.nextNonce
		attrs := a.attrs &^ (saAuditReset | saAuditExclusive)
		if a.attrs&saAudit != 0 && t.exclusiveAudit == s.handle {
			attrs |= saAuditExclusive
		}
		var mac []byte
		if !(s.isPolicy() && s.passwordNeeded) {
			d := s.hash.New()
			d.Write(u32(rcSuccess))
			d.Write(u32(c.def.cc))
			d.Write(params)
			key := append([]byte{}, s.sessionKey...)
			if i < len(c.authEnt) {
				key = append(key, authValueKey(s, c.authEnt[i])...)
			}
			mac = sessionHMAC(s.hash, key, d.Sum(nil), s.nonceTPM, a.nonce, nil, attrs)
		}
		out = appendSized(out, s.nonceTPM)
		out = append(out, attrs)
		out = appendSized(out, mac)
		if a.attrs&saContinueSession == 0 {
			delete(t.sessions, s.handle)
		} else if s.isPolicy() && i < c.def.nAuth {
			// A policy session that authorized a command starts over
			// (Part 1 §19.7.1): it cannot authorize twice on one
			// assertion.
			s.resetPolicy()
		}
	}
	return out
}

// audit extends the audit session's digest with this command (Part 1
// §32.6: auditDigest := H(auditDigest || cpHash || rpHash)) and tracks
// exclusivity: a session stays exclusive while every command runs in it.
func (t *TPM) audit(c *call, params []byte) {
	var as *authCmd
	for _, a := range c.auths {
		if a.sess != nil && a.attrs&saAudit != 0 {
			as = a
		}
	}
	if as == nil {
		t.exclusiveAudit = 0
		return
	}
	s := as.sess
	if as.attrs&saAuditReset != 0 || s.auditDigest == nil {
		s.auditDigest = make([]byte, s.hash.Size())
		t.exclusiveAudit = s.handle
	} else if t.exclusiveAudit != s.handle {
		t.exclusiveAudit = 0
	}
	rp := s.hash.New()
	rp.Write(u32(rcSuccess))
	rp.Write(u32(c.def.cc))
	rp.Write(params)
	d := s.hash.New()
	d.Write(s.auditDigest)
	d.Write(c.cpHash(s.hash))
	d.Write(rp.Sum(nil))
	s.auditDigest = d.Sum(nil)
}
