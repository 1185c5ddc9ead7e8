package tpm2

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
)

// Enhanced authorization, Part 3 §23. Each command folds its arguments
// into the session's policyDigest (PolicyUpdate, Part 3 §23.2.3) and
// records conditions that are checked when the session authorizes.

// policySession returns the policy session at handle position n.
func (t *TPM) policySession(h uint32, n int) (*session, error) {
	s := t.sessions[h]
	if s == nil || s.saved {
		return nil, absentHandle(h, activeSessionsMax, n)
	}
	if !s.policy {
		return nil, rcH(rcHandle, n, "not a policy session")
	}
	return s, nil
}

// extend is PolicyUpdate's first half: policyDigest := H(policyDigest ||
// parts...).
func (s *session) extend(parts ...[]byte) {
	d := s.hash.New()
	d.Write(s.policyDigest)
	for _, p := range parts {
		d.Write(p)
	}
	s.policyDigest = d.Sum(nil)
}

// update is PolicyUpdate (Part 3 §23.2.3): extend with commandCode ||
// arg2, then with arg3 (the policyRef).
func (s *session) update(cc gt.TPMCC, arg2, arg3 []byte) {
	s.extend(u32(uint32(cc)), arg2)
	s.extend(arg3)
}

func (s *session) setCpHash(cp []byte, n int) error {
	if len(cp) == 0 {
		return nil
	}
	if len(cp) != s.hash.Size() {
		return rcP(rcSize, n, "cpHashA size")
	}
	if len(s.cpHashA) != 0 && !bytes.Equal(s.cpHashA, cp) {
		return rcE(rcCpHash, "cpHash already set")
	}
	// cpHash, nameHash and templateHash share one slot of the session
	// (the reference's u1): only one of them can be set.
	if len(s.nameHash) != 0 || len(s.templateHash) != 0 {
		return rcE(rcCpHash, "nameHash or templateHash already set")
	}
	s.cpHashA = append([]byte{}, cp...)
	return nil
}

// authTimeout is the TPM time at which an authorization given with
// expiration (seconds; its sign only selects a ticket) ends, 0 for none,
// or TPM_RC_EXPIRED when that time has passed (Part 3 §23.3, §23.4). With
// nonceTPM the seconds count from the session's start, without it they
// are TPM time itself. A trial session records no limit.
func (t *TPM) authTimeout(s *session, expiration int32, nonceTPM []byte) (uint64, error) {
	if expiration == 0 || s.trial {
		return 0, nil
	}
	secs := int64(expiration)
	if secs < 0 {
		secs = -secs
	}
	now := t.timeMS()
	var at uint64
	if len(nonceTPM) != 0 {
		at = s.startMS + uint64(secs)*1000
	} else {
		// Whole seconds of TPM time: keep the current millisecond so the
		// authorization does not end early.
		at = uint64(secs)*1000 + now%1000
	}
	if at < now {
		return 0, rcP(rcExpired, 4, "expiration passed (at %d ms, TPM time %d ms)", at, now)
	}
	return at, nil
}

// limitTimeout keeps the earliest authorization end the policy was given.
func (s *session) limitTimeout(at uint64) {
	if at != 0 && (s.timeoutMS == 0 || at < s.timeoutMS) {
		s.timeoutMS = at
	}
}

// nullAuthTicket is the TPMT_TK_AUTH returned when no ticket is issued.
func nullAuthTicket(tag uint16) gt.TPMTTKAuth {
	return gt.TPMTTKAuth{Tag: gt.TPMST(tag), Hierarchy: gt.TPMIRHHierarchy(rhNull)}
}

// authTicket is the TPMT_TK_AUTH that lets PolicyTicket repeat a
// PolicySigned or PolicySecret (Part 1 §15.4 and Part 3 §23.11): an HMAC
// under the authorizing entity's hierarchy proof over the tag, the
// authorization's end in TPM time, the reset count (TPM time restarts at
// a TPM Reset, so the ticket must end there), cpHashA, policyRef and the
// entity's Name. The timeout buffer that goes with it is the end in TPM
// time, eight octets.
func (t *TPM) authTicket(tag uint16, hierarchy uint32, timeout uint64, cpHash, policyRef, name []byte) gt.TPMTTKAuth {
	return gt.TPMTTKAuth{Tag: gt.TPMST(tag), Hierarchy: gt.TPMIRHHierarchy(hierarchy),
		Digest: gt.TPM2BDigest{Buffer: t.ticketDigest(tag, hierarchy, cryptoSHA256,
			binary.BigEndian.AppendUint64(nil, timeout), u32(t.ps.ResetCount), sized(cpHash), sized(policyRef), sized(name))}}
}

// entityHierarchy is the hierarchy an authorizing entity belongs to, the
// one whose proof keys its tickets.
func entityHierarchy(e *entity) uint32 {
	switch {
	case e.obj != nil:
		return e.obj.hierarchy
	case e.nv != nil && e.nv.platformCreate():
		return rhPlatform
	case e.handle == rhEndorsement, e.handle == rhPlatform, e.handle == rhNull:
		return e.handle
	}
	return rhOwner
}

// ticketOut is what PolicySigned and PolicySecret return: with a negative
// expiration a ticket and its timeout, else an empty timeout and a NULL
// ticket (Part 3 §23.3.1).
func (t *TPM) ticketOut(s *session, expiration int32, tag uint16, hierarchy uint32, timeout uint64, cpHash, policyRef, name []byte) (gt.TPM2BTimeout, gt.TPMTTKAuth) {
	if expiration >= 0 || s.trial || timeout == 0 {
		return gt.TPM2BTimeout{}, nullAuthTicket(tag)
	}
	return gt.TPM2BTimeout{Buffer: binary.BigEndian.AppendUint64(nil, timeout)},
		t.authTicket(tag, hierarchy, timeout, cpHash, policyRef, name)
}

// policyTicket is TPM2_PolicyTicket, Part 3 §23.11.
func (t *TPM) policyTicket(c *call, cmd *policyTicketCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if len(cmd.Timeout.Buffer) != 8 {
		return nil, rcP(rcSize, 1, "timeout is %d octets, not 8", len(cmd.Timeout.Buffer))
	}
	at := binary.BigEndian.Uint64(cmd.Timeout.Buffer)
	if now := t.timeMS(); at < now {
		return nil, rcP(rcExpired, 1, "ticket ended at %d ms, TPM time %d ms", at, now)
	}
	var cc gt.TPMCC
	switch uint16(cmd.Ticket.Tag) {
	case stAuthSigned:
		cc = gt.TPMCCPolicySigned
	case stAuthSecret:
		cc = gt.TPMCCPolicySecret
	default:
		return nil, rcP(rcTag, 5, "ticket tag %#x", uint16(cmd.Ticket.Tag))
	}
	want := t.authTicket(uint16(cmd.Ticket.Tag), uint32(cmd.Ticket.Hierarchy), at, cmd.CPHashA.Buffer, cmd.PolicyRef.Buffer, cmd.AuthName.Buffer)
	if uint32(cmd.Ticket.Hierarchy) == rhNull || !hmac.Equal(want.Digest.Buffer, cmd.Ticket.Digest.Buffer) {
		return nil, rcP(rcTicket, 5, "ticket does not verify")
	}
	if err := s.setCpHash(cmd.CPHashA.Buffer, 2); err != nil {
		return nil, err
	}
	s.update(cc, cmd.AuthName.Buffer, cmd.PolicyRef.Buffer)
	s.limitTimeout(at)
	return nil, nil
}

// policyCounterTimer is TPM2_PolicyCounterTimer, Part 3 §23.10: an
// immediate comparison with the TPM's time and clock.
func (t *TPM) policyCounterTimer(c *call, cmd *policyCounterTimerCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	a, off := cmd.OperandB.Buffer, int(cmd.Offset)
	if cmd.Operation > 0x000B {
		return nil, rcP(rcValue, 3, "operation %#x", cmd.Operation)
	}
	if !s.trial {
		info := t.timeInfo()
		ti := gt.Marshal(&info) // TPMS_TIME_INFO, as the operand is read from it
		if off+len(a) > len(ti) {
			return nil, rcE(rcRange, "offset %d and %d octets beyond TPMS_TIME_INFO", off, len(a))
		}
		if !nvCompare(ti[off:off+len(a)], a, uint16(cmd.Operation)) {
			return nil, rcE(rcPolicy, "PolicyCounterTimer comparison fails")
		}
	}
	args := s.hash.New()
	args.Write(a)
	args.Write(u16(cmd.Offset))
	args.Write(u16(uint16(cmd.Operation)))
	s.extend(u32(uint32(gt.TPMCCPolicyCounterTimer)), args.Sum(nil))
	return nil, nil
}

// policyPhysicalPresence is TPM2_PolicyPhysicalPresence, Part 3 §23.15.
// No platform asserts physical presence to a vTPM, so a session carrying
// it authorizes nothing (TPM_RC_PP).
func (t *TPM) policyPhysicalPresence(c *call, cmd *policyPhysicalPresenceCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	s.isPPRequired = true
	s.extend(u32(uint32(gt.TPMCCPolicyPhysicalPresence)))
	return nil, nil
}

// policyTemplate is TPM2_PolicyTemplate, Part 3 §23.21: the session may
// only authorize creating an object from the template with this digest.
func (t *TPM) policyTemplate(c *call, cmd *policyTemplateCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	th := cmd.TemplateHash.Buffer
	if len(th) != s.hash.Size() {
		return nil, rcP(rcSize, 1, "templateHash size %d", len(th))
	}
	if (len(s.templateHash) != 0 && !bytes.Equal(s.templateHash, th)) || len(s.cpHashA) != 0 || len(s.nameHash) != 0 {
		return nil, rcE(rcCpHash, "cpHash, nameHash or another templateHash already set")
	}
	s.templateHash = append([]byte{}, th...)
	s.extend(u32(uint32(gt.TPMCCPolicyTemplate)), th)
	return nil, nil
}

// templateOf is the digest PolicyTemplate names for a creating command:
// H(inPublic), the public template after inSensitive (Part 3 §12.1,
// §12.9, §24.1), or nil when the command creates no object.
func templateOf(c *call, h crypto.Hash) []byte {
	switch gt.TPMCC(c.def.cc) {
	case gt.TPMCCCreate, gt.TPMCCCreatePrimary, gt.TPMCCCreateLoaded:
	default:
		return nil
	}
	r := &paramReader{b: c.params, n: 1}
	r.sized(maxCommandSize)
	r.next()
	pub := r.sized(maxCommandSize)
	if r.err != nil {
		return nil
	}
	d := h.New()
	d.Write(pub)
	return d.Sum(nil)
}

// policyPCR is TPM2_PolicyPCR, Part 3 §23.7.
func (t *TPM) policyPCR(c *call, cmd *gt.PolicyPCR) (*gt.PolicyPCRResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if err := validPCRSelection(cmd.Pcrs, 2); err != nil {
		return nil, err
	}
	digest := cmd.PcrDigest.Buffer
	cur := t.pcrDigest(s.hash, cmd.Pcrs)
	if !s.trial {
		if len(digest) != 0 && !bytes.Equal(digest, cur) {
			return nil, rcP(rcValue, 1, "PCR values do not match pcrDigest")
		}
		digest = cur
	} else if len(digest) == 0 {
		digest = cur
	}
	s.extend(u32(uint32(gt.TPMCCPolicyPCR)), gt.Marshal(&cmd.Pcrs), digest)
	s.pcrCounterSet, s.pcrCounter = true, t.pcrUpdateCounter
	return nil, nil
}

// policyAuthValue is TPM2_PolicyAuthValue, Part 3 §23.17.
func (t *TPM) policyAuthValue(c *call, cmd *gt.PolicyAuthValue) (*gt.PolicyAuthValueResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	s.extend(u32(uint32(gt.TPMCCPolicyAuthValue)))
	s.authValueNeeded, s.passwordNeeded = true, false
	return nil, nil
}

// policyPassword is TPM2_PolicyPassword, Part 3 §23.18.
func (t *TPM) policyPassword(c *call, cmd *policyPasswordCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	// Same digest as PolicyAuthValue (Part 3 §23.18): the policy
	// does not care how the authValue is proven.
	s.extend(u32(uint32(gt.TPMCCPolicyAuthValue)))
	s.passwordNeeded, s.authValueNeeded = true, false
	return nil, nil
}

// policyCommandCode is TPM2_PolicyCommandCode, Part 3 §23.11.
func (t *TPM) policyCommandCode(c *call, cmd *gt.PolicyCommandCode) (*gt.PolicyCommandCodeResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if s.commandCode != 0 && s.commandCode != uint32(cmd.Code) {
		return nil, rcP(rcValue, 1, "policy already bound to command 0x%x", s.commandCode)
	}
	if t.commands[uint32(cmd.Code)] == nil {
		return nil, rcP(rcPolicyCC, 1, "command 0x%x not implemented", uint32(cmd.Code))
	}
	s.extend(u32(uint32(gt.TPMCCPolicyCommandCode)), u32(uint32(cmd.Code)))
	s.commandCode = uint32(cmd.Code)
	return nil, nil
}

// policyOr is TPM2_PolicyOR, Part 3 §23.6.
func (t *TPM) policyOr(c *call, cmd *gt.PolicyOr) (*gt.PolicyOrResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	list := cmd.PHashList.Digests
	if len(list) < 2 || len(list) > 8 {
		return nil, rcP(rcSize, 1, "PolicyOR needs 2 to 8 digests")
	}
	found := s.trial
	var cat []byte
	for _, d := range list {
		if bytes.Equal(d.Buffer, s.policyDigest) {
			found = true
		}
		cat = append(cat, d.Buffer...)
	}
	if !found {
		return nil, rcP(rcValue, 1, "policyDigest not in the list")
	}
	s.policyDigest = make([]byte, s.hash.Size())
	s.extend(u32(uint32(gt.TPMCCPolicyOR)), cat)
	return nil, nil
}

// policyGetDigest is TPM2_PolicyGetDigest, Part 3 §23.19.
func (t *TPM) policyGetDigest(c *call, cmd *gt.PolicyGetDigest) (*gt.PolicyGetDigestResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	return &gt.PolicyGetDigestResponse{PolicyDigest: gt.TPM2BDigest{Buffer: s.policyDigest}}, nil
}

// policyRestart is TPM2_PolicyRestart, Part 3 §11.2.
func (t *TPM) policyRestart(c *call, cmd *policyRestartCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	s.resetPolicy()
	return nil, nil
}

// policyCpHash is TPM2_PolicyCpHash, Part 3 §23.13.
func (t *TPM) policyCpHash(c *call, cmd *gt.PolicyCPHash) (*gt.PolicyCPHashResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if err := s.setCpHash(cmd.CPHashA.Buffer, 1); err != nil {
		return nil, err
	}
	s.extend(u32(uint32(gt.TPMCCPolicyCpHash)), cmd.CPHashA.Buffer)
	return nil, nil
}

// policyNameHash is TPM2_PolicyNameHash, Part 3 §23.14.
func (t *TPM) policyNameHash(c *call, cmd *policyNameHashCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if len(cmd.NameHash.Buffer) != s.hash.Size() {
		return nil, rcP(rcSize, 1, "nameHash")
	}
	if len(s.cpHashA) != 0 || len(s.nameHash) != 0 || len(s.templateHash) != 0 {
		return nil, rcE(rcCpHash, "cpHash, nameHash or templateHash already set")
	}
	s.nameHash = append([]byte{}, cmd.NameHash.Buffer...)
	s.extend(u32(uint32(gt.TPMCCPolicyNameHash)), cmd.NameHash.Buffer)
	return nil, nil
}

// policyLocality is TPM2_PolicyLocality, Part 3 §23.8.
func (t *TPM) policyLocality(c *call, cmd *policyLocalityCmd) (*emptyResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	// The locality is not checked here but when the session
	// authorizes (checkPolicy): the command it authorizes is the one
	// that must come from an allowed locality. Values below 32 are
	// sets of localities 0–4 and narrow each other; 32 and above
	// name one extended locality and must agree (Part 3 §23.8).
	l, prev := cmd.Locality, s.commandLocality
	if l == 0 {
		return nil, rcP(rcRange, 1, "empty locality set")
	}
	if prev != 0 && (prev < 32) != (l < 32) {
		return nil, rcP(rcRange, 1, "extended and ordinary localities mixed")
	}
	next := l
	if l < 32 {
		if prev == 0 {
			prev = 0x1F
		}
		if next = prev & l; next == 0 {
			return nil, rcP(rcRange, 1, "no locality left in the set")
		}
	} else if prev != 0 && prev != l {
		return nil, rcP(rcRange, 1, "a different extended locality is already set")
	}
	s.extend(u32(uint32(gt.TPMCCPolicyLocality)), []byte{l})
	s.commandLocality = next
	return nil, nil
}

// policyNvWritten is TPM2_PolicyNvWritten, Part 3 §23.20.
func (t *TPM) policyNvWritten(c *call, cmd *gt.PolicyNVWritten) (*gt.PolicyNVWrittenResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	w := cmd.WrittenSet
	if s.nvWrittenSet && s.nvWritten != bool(w) {
		return nil, rcP(rcValue, 1, "conflicting PolicyNvWritten")
	}
	s.nvWrittenSet, s.nvWritten = true, bool(w)
	b := byte(0)
	if w {
		b = 1
	}
	s.extend(u32(uint32(gt.TPMCCPolicyNvWritten)), []byte{b})
	return nil, nil
}

// policySecret is TPM2_PolicySecret, Part 3 §23.4.
func (t *TPM) policySecret(c *call, cmd *gt.PolicySecret) (*gt.PolicySecretResponse, error) {
	s, err := t.policySession(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if !s.trial && len(cmd.NonceTPM.Buffer) != 0 && !bytes.Equal(cmd.NonceTPM.Buffer, s.nonceTPM) {
		return nil, rcP(rcNonce, 1, "nonceTPM is not the session's")
	}
	timeout, err := t.authTimeout(s, cmd.Expiration, cmd.NonceTPM.Buffer)
	if err != nil {
		return nil, err
	}
	if err := s.setCpHash(cmd.CPHashA.Buffer, 2); err != nil {
		return nil, err
	}
	s.update(gt.TPMCCPolicySecret, c.names[0], cmd.PolicyRef.Buffer)
	s.limitTimeout(timeout)
	ent, err := t.resolve(c.handles[0], 1, false)
	if err != nil {
		return nil, err
	}
	to, tk := t.ticketOut(s, cmd.Expiration, stAuthSecret, entityHierarchy(ent), timeout, cmd.CPHashA.Buffer, cmd.PolicyRef.Buffer, c.names[0])
	return &gt.PolicySecretResponse{Timeout: to, PolicyTicket: tk}, nil
}

// policySigned is TPM2_PolicySigned, Part 3 §23.3.
func (t *TPM) policySigned(c *call, cmd *gt.PolicySigned) (*gt.PolicySignedResponse, error) {
	s, err := t.policySession(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if !s.trial && len(cmd.NonceTPM.Buffer) != 0 && !bytes.Equal(cmd.NonceTPM.Buffer, s.nonceTPM) {
		return nil, rcP(rcNonce, 1, "nonceTPM is not the session's")
	}
	timeout, err := t.authTimeout(s, cmd.Expiration, cmd.NonceTPM.Buffer)
	if err != nil {
		return nil, err
	}
	if !s.trial {
		alg := sigHashAlg(&cmd.Auth)
		h, err := alg.Hash()
		if err != nil {
			return nil, rcP(rcHash, 5, "signature hash")
		}
		d := h.New()
		d.Write(cmd.NonceTPM.Buffer)
		d.Write(binary.BigEndian.AppendUint32(nil, uint32(cmd.Expiration)))
		d.Write(cmd.CPHashA.Buffer)
		d.Write(cmd.PolicyRef.Buffer)
		if !t.verify(o, d.Sum(nil), &cmd.Auth) {
			return nil, rcP(rcSignature, 5, "authorization signature")
		}
	}
	if err := s.setCpHash(cmd.CPHashA.Buffer, 2); err != nil {
		return nil, err
	}
	s.update(gt.TPMCCPolicySigned, o.name, cmd.PolicyRef.Buffer)
	s.limitTimeout(timeout)
	to, tk := t.ticketOut(s, cmd.Expiration, stAuthSigned, o.hierarchy, timeout, cmd.CPHashA.Buffer, cmd.PolicyRef.Buffer, o.name)
	return &gt.PolicySignedResponse{Timeout: to, PolicyTicket: tk}, nil
}

// policyAuthorize is TPM2_PolicyAuthorize, Part 3 §23.16.
func (t *TPM) policyAuthorize(c *call, cmd *gt.PolicyAuthorize) (*gt.PolicyAuthorizeResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	keySign := cmd.KeySign.Buffer
	if len(keySign) < 2 {
		return nil, rcP(rcSize, 3, "keySign")
	}
	if !s.trial {
		if !bytes.Equal(cmd.ApprovedPolicy.Buffer, s.policyDigest) {
			return nil, rcP(rcValue, 1, "policyDigest is not the approved policy")
		}
		kalg := gt.TPMIAlgHash(binary.BigEndian.Uint16(keySign))
		kh, err := kalg.Hash()
		if err != nil {
			return nil, rcP(rcHash, 3, "keySign name algorithm")
		}
		d := kh.New()
		d.Write(cmd.ApprovedPolicy.Buffer)
		d.Write(cmd.PolicyRef.Buffer)
		aHash := d.Sum(nil)
		tk := cmd.CheckTicket
		if tk.Tag != gt.TPMSTVerified || !t.checkTicket(stVerified, uint32(tk.Hierarchy), tk.Digest.Buffer, kh, aHash, keySign) {
			return nil, rcP(rcValue, 4, "checkTicket")
		}
	}
	s.policyDigest = make([]byte, s.hash.Size())
	s.update(gt.TPMCCPolicyAuthorize, keySign, cmd.PolicyRef.Buffer)
	return nil, nil
}

// policyDuplicationSelect is TPM2_PolicyDuplicationSelect, Part 3 §23.15.
func (t *TPM) policyDuplicationSelect(c *call, cmd *gt.PolicyDuplicationSelect) (*gt.PolicyDuplicationSelectResponse, error) {
	s, err := t.policySession(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if len(s.cpHashA) != 0 || len(s.nameHash) != 0 {
		return nil, rcE(rcCpHash, "cpHash or nameHash already set")
	}
	if s.commandCode != 0 && s.commandCode != uint32(gt.TPMCCDuplicate) {
		return nil, rcE(rcCommandCode, "policy bound to another command")
	}
	d := s.hash.New()
	d.Write(cmd.ObjectName.Buffer)
	d.Write(cmd.NewParentName.Buffer)
	s.nameHash = d.Sum(nil)
	inc := byte(0)
	parts := [][]byte{u32(uint32(gt.TPMCCPolicyDuplicationSelect))}
	if cmd.IncludeObject {
		inc = 1
		parts = append(parts, cmd.ObjectName.Buffer)
	}
	parts = append(parts, cmd.NewParentName.Buffer, []byte{inc})
	s.extend(parts...)
	s.commandCode = uint32(gt.TPMCCDuplicate)
	return nil, nil
}

// policyAuthorizeNV is TPM2_PolicyAuthorizeNV, Part 3 §23.22.
func (t *TPM) policyAuthorizeNV(c *call, cmd *gt.PolicyAuthorizeNV) (*gt.PolicyAuthorizeNVResponse, error) {
	s, err := t.policySession(c.handles[2], 3)
	if err != nil {
		return nil, err
	}
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if !s.trial {
		if err := t.nvReadable(c, c.handles[0], n); err != nil {
			return nil, err
		}
		// The index holds a TPMT_HA: the approved policy.
		if len(n.data) < 2 || gt.TPMIAlgHash(binary.BigEndian.Uint16(n.data)) != s.hashAlg ||
			!bytes.Equal(n.data[2:], s.policyDigest) {
			return nil, rcE(rcValue, "policyDigest is not the policy in the NV index")
		}
	}
	s.policyDigest = make([]byte, s.hash.Size())
	s.extend(u32(uint32(gt.TPMCCPolicyAuthorizeNV)), n.name())
	return nil, nil
}

func sigHashAlg(sig *gt.TPMTSignature) gt.TPMIAlgHash {
	switch sig.SigAlg {
	case gt.TPMAlgRSASSA:
		if s, err := sig.Signature.RSASSA(); err == nil {
			return s.Hash
		}
	case gt.TPMAlgRSAPSS:
		if s, err := sig.Signature.RSAPSS(); err == nil {
			return s.Hash
		}
	case gt.TPMAlgECDSA:
		if s, err := sig.Signature.ECDSA(); err == nil {
			return s.Hash
		}
	case gt.TPMAlgHMAC:
		if s, err := sig.Signature.HMAC(); err == nil {
			return s.HashAlg
		}
	}
	return gt.TPMAlgNull
}
