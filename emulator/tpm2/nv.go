package tpm2

import (
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
)

// NV indices, Part 3 §31; index types and attributes Part 2 §13.

const maxNVIndexSize = 2 * maxNVBuffer

type nvIndex struct {
	pub   gt.TPMSNVPublic
	auth  []byte
	data  []byte
	flags uint32 // reserved for later state; kept in the blob
}

func (n *nvIndex) typ() gt.TPMNT { return n.pub.Attributes.NT }

func (n *nvIndex) platformCreate() bool { return n.pub.Attributes.PlatformCreate }

func (n *nvIndex) name() []byte {
	name, err := gt.NVName(&n.pub)
	if err != nil {
		return u32(uint32(n.pub.NVIndex))
	}
	return name.Buffer
}

func (n *nvIndex) fillEntity(e *entity) {
	e.nv = n
	e.auth = n.auth
	e.policy = n.pub.AuthPolicy.Buffer
	e.policyAlg = n.pub.NameAlg
	e.userWithAuth = true
	e.noDA = n.pub.Attributes.NoDA
	e.name = n.name()
}

// nvWriteCommands are the commands that write an index (or lock it for
// writing): an index authorizes them with its authValue only when
// TPMA_NV_AUTHWRITE is SET, with its policy only when TPMA_NV_POLICYWRITE
// is; every other command it authorizes is a read (Part 1 §37.3, as the
// reference implementation's IsWriteOperation has it).
var nvWriteCommands = map[uint32]bool{
	uint32(gt.TPMCCNVWrite): true, uint32(gt.TPMCCNVIncrement): true, uint32(gt.TPMCCNVExtend): true,
	uint32(gt.TPMCCNVSetBits): true, uint32(gt.TPMCCNVWriteLock): true,
}

// nvAuthCommands are the commands whose authorization handle may be an NV
// index (TPMI_RH_NV_AUTH, TPMI_DH_ENTITY): those in which a PIN index's
// authValue can be used, and so its pinCount change.
var nvAuthCommands = map[uint32]bool{
	uint32(gt.TPMCCNVWrite): true, uint32(gt.TPMCCNVIncrement): true, uint32(gt.TPMCCNVExtend): true,
	uint32(gt.TPMCCNVSetBits): true, uint32(gt.TPMCCNVWriteLock): true, uint32(gt.TPMCCNVRead): true,
	uint32(gt.TPMCCNVReadLock): true, uint32(gt.TPMCCNVCertify): true, uint32(gt.TPMCCNVChangeAuth): true,
	uint32(gt.TPMCCNVUndefineSpaceSpecial): true, uint32(gt.TPMCCPolicyNV): true,
	uint32(gt.TPMCCPolicySecret): true, uint32(gt.TPMCCPolicyAuthorizeNV): true,
}

// checkAuthAllowed says whether the index's authValue (or, in a policy
// session, its authPolicy) may authorize command cc, Part 1 §37.3: the
// authValue of a write needs TPMA_NV_AUTHWRITE, of anything else
// TPMA_NV_AUTHREAD, and that of a PIN index is available only once it is
// written and while pinCount is below pinLimit (Part 1 §37.4.5); the
// policy needs TPMA_NV_POLICYWRITE or POLICYREAD unless the role demands
// a policy. Refusal is TPM_RC_AUTH_UNAVAILABLE, as in the reference
// implementation.
func (n *nvIndex) checkAuthAllowed(cc uint32, a *authCmd, role authRole) error {
	at := n.pub.Attributes
	write := nvWriteCommands[cc]
	if a.sess != nil && a.sess.isPolicy() {
		ok := len(n.pub.AuthPolicy.Buffer) != 0 &&
			(role != roleUser || (write && at.PolicyWrite) || (!write && at.PolicyRead))
		if !ok {
			return rcE(rcAuthUnavailable, "index policy not available for this command")
		}
		return nil
	}
	var ok bool
	switch {
	case write:
		ok = at.AuthWrite
	case n.isPin():
		count, limit := n.pin()
		ok = at.Written && count < limit
	default:
		ok = at.AuthRead
	}
	if !ok {
		return rcE(rcAuthUnavailable, "index authValue not available for this command")
	}
	return nil
}

// isPin reports a PIN-pass or PIN-fail index (Part 2 §13.2).
func (n *nvIndex) isPin() bool {
	return n.typ() == gt.TPMNTPinPass || n.typ() == gt.TPMNTPinFail
}

// pin returns pinCount and pinLimit, TPMS_NV_PIN_COUNTER_PARAMETERS
// (Part 2 §13.8), the eight octets of a PIN index.
func (n *nvIndex) pin() (count, limit uint32) {
	if len(n.data) != 8 {
		return 0, 0
	}
	return binary.BigEndian.Uint32(n.data), binary.BigEndian.Uint32(n.data[4:])
}

// pinAuthUsed updates a written PIN index after its authValue was
// checked (Part 1 §37.4.5): a PIN-pass index counts each success, a
// PIN-fail index counts each failure and starts over on a success. It
// reports whether pinCount was written.
func (n *nvIndex) pinAuthUsed(ok bool) bool {
	if !n.isPin() || !n.pub.Attributes.Written {
		return false
	}
	count, _ := n.pin()
	switch {
	case n.typ() == gt.TPMNTPinPass && ok, n.typ() == gt.TPMNTPinFail && !ok:
		count++
	case n.typ() == gt.TPMNTPinFail:
		count = 0
	default:
		return false
	}
	binary.BigEndian.PutUint32(n.data, count)
	return true
}

// hasPinIndex reports whether a PIN index is defined: then the commands
// an index may authorize can change durable state (its pinCount).
func (t *TPM) hasPinIndex() bool {
	for _, n := range t.ps.nv {
		if n.isPin() {
			return true
		}
	}
	return false
}

// checkNVAuthHandle checks a hierarchy used as authHandle for an index.
func checkNVAuthHandle(auth uint32, n *nvIndex, write bool) error {
	at := n.pub.Attributes
	switch auth {
	case uint32(n.pub.NVIndex):
		return nil
	case rhOwner:
		if (write && at.OwnerWrite) || (!write && at.OwnerRead) {
			return nil
		}
	case rhPlatform:
		if (write && at.PPWrite) || (!write && at.PPRead) {
			return nil
		}
	}
	return rcE(rcNVAuthorization, "authHandle may not access this index")
}

func nvFromState(s stateNV) (*nvIndex, error) {
	p, err := gt.Unmarshal[gt.TPMSNVPublic](s.Public)
	if err != nil {
		return nil, err
	}
	if uint32(p.NVIndex)>>24 != htNVIndex || int(p.DataSize) > maxNVIndexSize || len(s.Data) > maxNVIndexSize {
		return nil, errBadNV
	}
	return &nvIndex{pub: *p, auth: s.Auth, data: s.Data, flags: s.Flags}, nil
}

type nvError string

func (e nvError) Error() string { return string(e) }

const errBadNV = nvError("NV index out of range")

func (t *TPM) nvCounters() uint32 {
	n := uint32(0)
	for _, x := range t.ps.nv {
		if x.typ() == gt.TPMNTCounter {
			n++
		}
	}
	return n
}

// nvStartup applies the per-boot attribute rules (Part 2 §13.4).
func (t *TPM) nvStartup() {
	for _, n := range t.ps.nv {
		a := &n.pub.Attributes
		a.ReadLocked = false
		if !a.WriteDefine || !a.Written {
			a.WriteLocked = false
		}
		if a.ClearSTClear {
			a.Written = false
		}
	}
}

// nvAccessible reports whether an index can be used: an index the owner
// defined is absent while shEnable is CLEAR, one the platform defined
// while phEnableNV is CLEAR (Part 3 §24.2, TPM2_HierarchyControl), and is
// answered TPM_RC_HANDLE as an undefined one is.
func (t *TPM) nvAccessible(n *nvIndex) bool {
	if n.platformCreate() {
		return t.phEnableNV
	}
	return t.ps.ShEnable
}

func (t *TPM) nvIndexAt(h uint32, n int) (*nvIndex, error) {
	x := t.ps.nv[h]
	if x == nil {
		return nil, rcH(rcHandle, n, "NV index 0x%08x not defined", h)
	}
	return x, nil
}

// nvWritable checks the common write preconditions.
func (t *TPM) nvWritable(c *call, n *nvIndex) error {
	if err := checkNVAuthHandle(c.handles[0], n, true); err != nil {
		return err
	}
	if n.pub.Attributes.WriteLocked {
		return rcE(rcNVLocked, "index is write locked")
	}
	return nil
}

func (t *TPM) nvReadable(c *call, authH uint32, n *nvIndex) error {
	if err := checkNVAuthHandle(authH, n, false); err != nil {
		return err
	}
	if n.pub.Attributes.ReadLocked {
		return rcE(rcNVLocked, "index is read locked")
	}
	if !n.pub.Attributes.Written {
		return rcE(rcNVUninitialized, "index not written")
	}
	return nil
}

// nvDefineSpace is TPM2_NV_DefineSpace, Part 3 §31.3.
func (t *TPM) nvDefineSpace(c *call, cmd *nvDefineSpaceCmd) (*gt.NVDefineSpaceResponse, error) {
	auth := c.handles[0]
	if auth != rhOwner && auth != rhPlatform {
		return nil, rcH(rcHierarchy, 1, "NV_DefineSpace needs owner or platform")
	}
	p, err := gt.Unmarshal[gt.TPMSNVPublic](cmd.PublicInfo.Buffer)
	if err != nil || len(gt.Marshal(p)) != len(cmd.PublicInfo.Buffer) {
		return nil, rcP(rcSize, 2, "publicInfo")
	}
	h := uint32(p.NVIndex)
	if h>>24 != htNVIndex {
		return nil, rcP(rcValue, 2, "not an NV index handle")
	}
	hash, err := p.NameAlg.Hash()
	if err != nil || !hashSupported(p.NameAlg) {
		return nil, rcP(rcHash, 2, "nameAlg")
	}
	if l := len(p.AuthPolicy.Buffer); l != 0 && l != hash.Size() {
		return nil, rcP(rcSize, 2, "authPolicy size")
	}
	if len(trimAuth(cmd.Auth.Buffer)) > hash.Size() {
		return nil, rcP(rcSize, 1, "auth longer than nameAlg digest")
	}
	if auth == rhPlatform && !t.phEnableNV {
		return nil, rcH(rcHierarchy, 1, "phEnableNV is CLEAR")
	}
	a := p.Attributes
	switch a.NT {
	case gt.TPMNTOrdinary:
		if p.DataSize > maxNVIndexSize {
			return nil, rcP(rcSize, 2, "dataSize %d", p.DataSize)
		}
	case gt.TPMNTExtend:
		if int(p.DataSize) != hash.Size() {
			return nil, rcP(rcSize, 2, "extend index size must be the digest size")
		}
	case gt.TPMNTCounter, gt.TPMNTBits, gt.TPMNTPinFail, gt.TPMNTPinPass:
		if p.DataSize != 8 {
			return nil, rcP(rcSize, 2, "counter, bit field and PIN indices are 8 octets")
		}
	default:
		return nil, rcP(rcAttributes, 2, "index type %d not supported", a.NT)
	}
	switch a.NT {
	case gt.TPMNTCounter:
		if a.ClearSTClear {
			return nil, rcP(rcAttributes, 2, "CLEAR_STCLEAR on a counter")
		}
	case gt.TPMNTPinFail, gt.TPMNTPinPass:
		// A PIN-fail index must not count towards DA lockout: it has
		// its own limit. Neither kind may be written with its own
		// authValue, which is not available before the index is
		// written (Part 3 §31.3.1).
		if a.NT == gt.TPMNTPinFail && !a.NoDA {
			return nil, rcP(rcAttributes, 2, "a PIN-fail index needs TPMA_NV_NO_DA")
		}
		if a.AuthWrite || a.GlobalLock || a.WriteDefine {
			return nil, rcP(rcAttributes, 2, "AUTHWRITE, GLOBALLOCK or WRITEDEFINE on a PIN index")
		}
	}
	if a.WriteLocked || a.ReadLocked || a.Written {
		return nil, rcP(rcAttributes, 2, "state attributes set")
	}
	if !(a.PPRead || a.OwnerRead || a.AuthRead || a.PolicyRead) || !(a.PPWrite || a.OwnerWrite || a.AuthWrite || a.PolicyWrite) {
		return nil, rcP(rcAttributes, 2, "no read or no write authorization")
	}
	if a.ClearSTClear && a.WriteDefine {
		return nil, rcP(rcAttributes, 2, "CLEAR_STCLEAR with WRITEDEFINE")
	}
	if a.PlatformCreate != (auth == rhPlatform) {
		return nil, rcH(rcAttributes, 1, "TPMA_NV_PLATFORMCREATE must match the authorizing hierarchy")
	}
	if a.PolicyDelete && auth != rhPlatform {
		return nil, rcP(rcAttributes, 2, "POLICY_DELETE needs platform")
	}
	if p.DataSize > maxNVBuffer && a.WriteAll {
		return nil, rcP(rcSize, 2, "WRITEALL on an index larger than the NV buffer")
	}
	if t.ps.nv[h] != nil {
		return nil, rcE(rcNVDefined, "index 0x%08x exists", h)
	}
	used := 0
	for _, x := range t.ps.nv {
		used += int(x.pub.DataSize)
	}
	if len(t.ps.nv) >= nvIndexMax || used+int(p.DataSize) > nvMemoryBytes {
		return nil, rcE(rcNVSpace, "NV memory exhausted")
	}
	data := make([]byte, p.DataSize)
	if a.NT == gt.TPMNTOrdinary {
		for i := range data {
			data[i] = 0xFF
		}
	}
	t.ps.nv[h] = &nvIndex{pub: *p, auth: append([]byte{}, cmd.Auth.Buffer...), data: data}
	return nil, nil
}

// nvUndefineSpace is TPM2_NV_UndefineSpace, Part 3 §31.4.
func (t *TPM) nvUndefineSpace(c *call, cmd *gt.NVUndefineSpace) (*gt.NVUndefineSpaceResponse, error) {
	auth := c.handles[0]
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if auth != rhOwner && auth != rhPlatform {
		return nil, rcH(rcHierarchy, 1, "needs owner or platform")
	}
	if n.pub.Attributes.PolicyDelete {
		return nil, rcH(rcAttributes, 2, "POLICY_DELETE index needs NV_UndefineSpaceSpecial")
	}
	// The platform may delete any index, the owner only its own (Part 3
	// §31.4, as the reference implementation has it).
	if auth == rhOwner && n.platformCreate() {
		return nil, rcE(rcNVAuthorization, "the owner cannot delete a platform index")
	}
	delete(t.ps.nv, c.handles[1])
	return nil, nil
}

// nvUndefineSpaceSpecial is TPM2_NV_UndefineSpaceSpecial, Part 3 §31.5.
func (t *TPM) nvUndefineSpaceSpecial(c *call, cmd *gt.NVUndefineSpaceSpecial) (*gt.NVUndefineSpaceSpecialResponse, error) {
	n, err := t.nvIndexAt(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if c.handles[1] != rhPlatform {
		return nil, rcH(rcValue, 2, "needs platform")
	}
	if !n.pub.Attributes.PolicyDelete {
		return nil, rcH(rcAttributes, 1, "index is not POLICY_DELETE")
	}
	delete(t.ps.nv, c.handles[0])
	return nil, nil
}

// nvReadPublic is TPM2_NV_ReadPublic, Part 3 §31.6.
func (t *TPM) nvReadPublic(c *call, cmd *gt.NVReadPublic) (*gt.NVReadPublicResponse, error) {
	n, err := t.nvIndexAt(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	return &gt.NVReadPublicResponse{NVPublic: gt.New2B(n.pub), NVName: gt.TPM2BName{Buffer: n.name()}}, nil
}

// nvWrite is TPM2_NV_Write, Part 3 §31.7.
func (t *TPM) nvWrite(c *call, cmd *gt.NVWrite) (*gt.NVWriteResponse, error) {
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if err := t.nvWritable(c, n); err != nil {
		return nil, err
	}
	if nt := n.typ(); nt != gt.TPMNTOrdinary && nt != gt.TPMNTPinPass && nt != gt.TPMNTPinFail {
		return nil, rcE(rcAttributes, "NV_Write needs an ordinary or PIN index")
	}
	d, off := cmd.Data.Buffer, int(cmd.Offset)
	if len(d) > maxNVBuffer {
		return nil, rcP(rcSize, 1, "data larger than NV buffer")
	}
	if off+len(d) > len(n.data) {
		return nil, rcE(rcNVRange, "write beyond the index")
	}
	if n.pub.Attributes.WriteAll && (off != 0 || len(d) != len(n.data)) {
		return nil, rcE(rcNVRange, "TPMA_NV_WRITEALL index needs a full write")
	}
	copy(n.data[off:], d)
	n.pub.Attributes.Written = true
	return nil, nil
}

// nvRead is TPM2_NV_Read, Part 3 §31.13.
func (t *TPM) nvRead(c *call, cmd *gt.NVRead) (*gt.NVReadResponse, error) {
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if err := t.nvReadable(c, c.handles[0], n); err != nil {
		return nil, err
	}
	size, off := int(cmd.Size), int(cmd.Offset)
	if size > maxNVBuffer {
		return nil, rcP(rcValue, 1, "size larger than NV buffer")
	}
	if off+size > len(n.data) {
		return nil, rcE(rcNVRange, "read beyond the index")
	}
	return &gt.NVReadResponse{Data: gt.TPM2BMaxNVBuffer{Buffer: n.data[off : off+size]}}, nil
}

// nvIncrement is TPM2_NV_Increment, Part 3 §31.8.
func (t *TPM) nvIncrement(c *call, cmd *gt.NVIncrement) (*gt.NVIncrementResponse, error) {
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if err := t.nvWritable(c, n); err != nil {
		return nil, err
	}
	if n.typ() != gt.TPMNTCounter {
		return nil, rcH(rcAttributes, 2, "not a counter index")
	}
	v := binary.BigEndian.Uint64(n.data)
	if !n.pub.Attributes.Written && v < t.ps.CounterHighWater {
		v = t.ps.CounterHighWater
	}
	if v == ^uint64(0) {
		return nil, rcE(rcNVRange, "counter at its maximum")
	}
	v++
	if v > t.ps.CounterHighWater {
		t.ps.CounterHighWater = v
	}
	binary.BigEndian.PutUint64(n.data, v)
	n.pub.Attributes.Written = true
	return nil, nil
}

// nvExtend is TPM2_NV_Extend, Part 3 §31.9.
func (t *TPM) nvExtend(c *call, cmd *nvExtendCmd) (*emptyResponse, error) {
	// TPM2B_MAX_NV_BUFFER's bound, checked as the parameter is read.
	if len(cmd.Data.Buffer) > maxNVBuffer {
		return nil, rcP(rcSize, 1, "data larger than MAX_NV_BUFFER_SIZE")
	}
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if err := t.nvWritable(c, n); err != nil {
		return nil, err
	}
	if n.typ() != gt.TPMNTExtend {
		return nil, rcH(rcAttributes, 2, "not an extend index")
	}
	h, _ := n.pub.NameAlg.Hash()
	d := h.New()
	d.Write(n.data)
	d.Write(cmd.Data.Buffer)
	n.data = d.Sum(nil)
	n.pub.Attributes.Written = true
	return nil, nil
}

// nvSetBits is TPM2_NV_SetBits, Part 3 §31.10.
func (t *TPM) nvSetBits(c *call, cmd *nvSetBitsCmd) (*emptyResponse, error) {
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if err := t.nvWritable(c, n); err != nil {
		return nil, err
	}
	if n.typ() != gt.TPMNTBits {
		return nil, rcH(rcAttributes, 2, "not a bit-field index")
	}
	binary.BigEndian.PutUint64(n.data, binary.BigEndian.Uint64(n.data)|cmd.Bits)
	n.pub.Attributes.Written = true
	return nil, nil
}

// nvWriteLock is TPM2_NV_WriteLock, Part 3 §31.11.
func (t *TPM) nvWriteLock(c *call, cmd *gt.NVWriteLock) (*gt.NVWriteLockResponse, error) {
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if err := checkNVAuthHandle(c.handles[0], n, true); err != nil {
		return nil, err
	}
	a := &n.pub.Attributes
	if !a.WriteDefine && !a.WriteSTClear {
		return nil, rcH(rcAttributes, 2, "index cannot be write locked")
	}
	a.WriteLocked = true
	return nil, nil
}

// nvReadLock is TPM2_NV_ReadLock, Part 3 §31.14.
func (t *TPM) nvReadLock(c *call, cmd *gt.NVReadLock) (*gt.NVReadLockResponse, error) {
	n, err := t.nvIndexAt(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if err := checkNVAuthHandle(c.handles[0], n, false); err != nil {
		return nil, err
	}
	if !n.pub.Attributes.ReadSTClear {
		return nil, rcH(rcAttributes, 2, "index cannot be read locked")
	}
	n.pub.Attributes.ReadLocked = true
	return nil, nil
}

// nvGlobalWriteLock is TPM2_NV_GlobalWriteLock, Part 3 §31.12.
func (t *TPM) nvGlobalWriteLock(c *call, cmd *nvGlobalWriteLockCmd) (*emptyResponse, error) {
	if c.handles[0] != rhOwner && c.handles[0] != rhPlatform {
		return nil, rcH(rcHierarchy, 1, "needs owner or platform")
	}
	for _, n := range t.ps.nv {
		if n.pub.Attributes.GlobalLock {
			n.pub.Attributes.WriteLocked = true
		}
	}
	return nil, nil
}

// nvChangeAuth is TPM2_NV_ChangeAuth, Part 3 §31.15.
func (t *TPM) nvChangeAuth(c *call, cmd *nvChangeAuthCmd) (*emptyResponse, error) {
	n, err := t.nvIndexAt(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	h, _ := n.pub.NameAlg.Hash()
	if len(trimAuth(cmd.NewAuth.Buffer)) > h.Size() {
		return nil, rcP(rcSize, 1, "newAuth longer than nameAlg digest")
	}
	n.auth = append([]byte{}, cmd.NewAuth.Buffer...)
	return nil, nil
}

// nvCertify is TPM2_NV_Certify, Part 3 §31.16.
func (t *TPM) nvCertify(c *call, cmd *gt.NVCertify) (*gt.NVCertifyResponse, error) {
	n, err := t.nvIndexAt(c.handles[2], 3)
	if err != nil {
		return nil, err
	}
	if err := t.nvReadable(c, c.handles[1], n); err != nil {
		return nil, err
	}
	size, off := int(cmd.Size), int(cmd.Offset)
	if off+size > len(n.data) {
		return nil, rcE(rcNVRange, "certify beyond the index")
	}
	if size > maxNVBuffer {
		return nil, rcP(rcValue, 3, "size larger than MAX_NV_BUFFER_SIZE")
	}
	typ, body := stAttestNV, sized(n.name())
	if size == 0 && off == 0 {
		// TPMS_NV_DIGEST_CERTIFY_INFO (Part 3 §31.16.1): the digest of
		// the whole index with the signing scheme's hash; without a
		// signing key there is no scheme, and the digest is empty.
		typ = stAttestNVDigest
		var digest []byte
		if signer, err := t.loadedObject(c.handles[0], 1); err == nil && c.handles[0] != rhNull {
			if _, h, _, err := signScheme(signer, &cmd.InScheme, 2); err == nil {
				d := h.New()
				d.Write(n.data)
				digest = d.Sum(nil)
			}
		}
		body = append(body, sized(digest)...)
	} else {
		body = append(body, u16(uint16(off))...)
		body = append(body, sized(n.data[off:off+size])...)
	}
	info, sig, err := t.attest(c.handles[0], 1, typ, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	if err != nil {
		return nil, err
	}
	return &gt.NVCertifyResponse{CertifyInfo: info, Signature: sig}, nil
}

// policyNV is TPM2_PolicyNV, Part 3 §23.9.
func (t *TPM) policyNV(c *call, cmd *gt.PolicyNV) (*gt.PolicyNVResponse, error) {
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
		op, off := cmd.OperandB.Buffer, int(cmd.Offset)
		if off+len(op) > len(n.data) {
			return nil, rcE(rcNVRange, "operand beyond the index")
		}
		if !nvCompare(n.data[off:off+len(op)], op, uint16(cmd.Operation)) {
			return nil, rcE(rcPolicy, "PolicyNV comparison failed")
		}
	}
	d := s.hash.New()
	d.Write(cmd.OperandB.Buffer)
	d.Write(u16(cmd.Offset))
	d.Write(u16(uint16(cmd.Operation)))
	s.extend(u32(uint32(gt.TPMCCPolicyNV)), d.Sum(nil), n.name())
	return nil, nil
}

// nvCompare is the TPM_EO comparison of PolicyNV (Part 2 §6.8).
func nvCompare(a, b []byte, op uint16) bool {
	cmpU := func() int {
		for i := range a {
			if a[i] != b[i] {
				if a[i] < b[i] {
					return -1
				}
				return 1
			}
		}
		return 0
	}
	// Signed comparisons follow the reference implementation (and
	// libtpms), not two's complement: between two negative operands the
	// magnitudes of the octet strings are compared, so the order is the
	// reverse of the numbers' (-1, 0xFF, is "less" than -2, 0xFE). Policies
	// computed against real TPMs rely on it.
	cmpS := func() int {
		if len(a) > 0 && (a[0]^b[0])&0x80 != 0 {
			if a[0]&0x80 != 0 {
				return -1
			}
			return 1
		}
		if len(a) > 0 && a[0]&0x80 != 0 {
			return -cmpU()
		}
		return cmpU()
	}
	switch op {
	case 0x0000:
		return cmpU() == 0
	case 0x0001:
		return cmpU() != 0
	case 0x0002:
		return cmpS() > 0
	case 0x0003:
		return cmpU() > 0
	case 0x0004:
		return cmpS() < 0
	case 0x0005:
		return cmpU() < 0
	case 0x0006:
		return cmpS() >= 0
	case 0x0007:
		return cmpU() >= 0
	case 0x0008:
		return cmpS() <= 0
	case 0x0009:
		return cmpU() <= 0
	case 0x000A:
		for i := range a {
			if a[i]&b[i] != b[i] {
				return false
			}
		}
		return true
	case 0x000B:
		for i := range a {
			if a[i]&b[i] != 0 {
				return false
			}
		}
		return true
	}
	return false
}
