package tpm2

import (
	"bytes"
	"crypto"
	"crypto/subtle"

	gt "github.com/google/go-tpm/tpm2"
)

// session is an HMAC, policy or trial session (Part 1 §19.6, §19.7).
type session struct {
	handle     uint32
	hashAlg    gt.TPMIAlgHash
	hash       crypto.Hash
	nonceTPM   []byte
	nextNonce  []byte
	sessionKey []byte
	sym        gt.TPMTSymDef

	bound    bool
	bindName []byte
	bindAuth []byte

	// Policy session state, Part 3 §23.
	policy          bool
	trial           bool
	policyDigest    []byte
	authValueNeeded bool
	passwordNeeded  bool
	commandCode     uint32
	pcrCounterSet   bool
	pcrCounter      uint32
	cpHashA         []byte
	nameHash        []byte
	templateHash    []byte
	isPPRequired    bool
	nvWrittenSet    bool
	nvWritten       bool
	// commandLocality is the TPMA_LOCALITY the policy allows (0: any),
	// checked when the session authorizes (Part 3 §23.8).
	commandLocality uint8
	// startMS is TPM time when the session started; timeoutMS, when
	// not 0, the TPM time after which the policy no longer authorizes
	// (PolicySigned/PolicySecret expiration, Part 3 §23.3).
	startMS   uint64
	timeoutMS uint64

	// auditDigest is the session audit digest, nil until first used
	// for audit.
	auditDigest []byte

	// saved is set while a context of this session is outstanding
	// (ContextSave); the session is then not usable until ContextLoad.
	saved      bool
	contextSeq uint64
}

func (s *session) isPolicy() bool { return s.policy }

// boundTo reports whether s is bound to e (Part 1 §19.6.10). The
// authValues are compared in constant time: which answer comes back
// decides the HMAC key, and the time taken must not tell a caller how much
// of a guessed authValue was right.
func (s *session) boundTo(e *entity) bool {
	if !s.bound || !bytes.Equal(s.bindName, e.name) {
		return false
	}
	return subtle.ConstantTimeCompare(s.bindAuth, trimAuth(e.auth)) == 1
}

// resetPolicy returns the policy state to that of a fresh session
// (PolicyRestart, Part 3 §23.21).
func (s *session) resetPolicy() {
	s.policyDigest = make([]byte, s.hash.Size())
	s.authValueNeeded, s.passwordNeeded = false, false
	s.commandCode = 0
	s.pcrCounterSet = false
	s.cpHashA, s.nameHash, s.templateHash = nil, nil, nil
	s.isPPRequired, s.nvWrittenSet, s.nvWritten = false, false, false
	s.commandLocality, s.timeoutMS = 0, 0
}

// Session types, Part 2 §6.14 (TPM_SE).
const (
	seHMAC   = 0x00
	sePolicy = 0x01
	seTrial  = 0x03
)

func (t *TPM) allocSessionHandle(policy bool) (uint32, error) {
	if len(t.sessions) >= activeSessionsMax {
		return 0, rcE(rcSessionMemory, "%d sessions active", len(t.sessions))
	}
	base := uint32(htHMAC) << 24
	if policy {
		base = uint32(htPolicy) << 24
	}
	// Slots rotate so a just-flushed handle is not reused at once.
	for i := uint32(0); ; i++ {
		idx := (t.nextSession + i) % activeSessionsMax
		if t.sessions[uint32(htHMAC)<<24|idx] == nil && t.sessions[uint32(htPolicy)<<24|idx] == nil {
			t.nextSession = (idx + 1) % activeSessionsMax
			return base | idx, nil
		}
	}
}

func validSessionSym(sym gt.TPMTSymDef) error {
	switch sym.Algorithm {
	case gt.TPMAlgNull:
		return nil
	case gt.TPMAlgXOR:
		h, err := sym.KeyBits.XOR()
		if err != nil {
			return rcP(rcSymmetric, 4, "XOR hash")
		}
		if _, err := h.Hash(); err != nil {
			return rcP(rcHash, 4, "XOR hash 0x%x", uint16(*h))
		}
		return nil
	case gt.TPMAlgAES:
		bits, err := sym.KeyBits.AES()
		if err != nil || (*bits != 128 && *bits != 192 && *bits != 256) {
			return rcP(rcKeySize, 4, "AES key size")
		}
		mode, err := sym.Mode.AES()
		if err != nil || *mode != gt.TPMAlgCFB {
			return rcP(rcMode, 4, "session cipher mode must be CFB")
		}
		return nil
	}
	return rcP(rcSymmetric, 4, "session cipher 0x%x", uint16(sym.Algorithm))
}

// startAuthSession is TPM2_StartAuthSession, Part 3 §11.1.
func (t *TPM) startAuthSession(c *call, cmd *gt.StartAuthSession) (*gt.StartAuthSessionResponse, error) {
	h, err := cmd.AuthHash.Hash()
	if err != nil || !hashSupported(cmd.AuthHash) {
		return nil, rcP(rcHash, 5, "authHash 0x%x", uint16(cmd.AuthHash))
	}
	nc := cmd.NonceCaller.Buffer
	if len(nc) < 16 || len(nc) > h.Size() {
		return nil, rcP(rcSize, 1, "nonceCaller size %d", len(nc))
	}
	var st byte
	switch cmd.SessionType {
	case seHMAC, sePolicy, seTrial:
		st = byte(cmd.SessionType)
	default:
		return nil, rcP(rcValue, 3, "session type %d", cmd.SessionType)
	}
	if err := validSessionSym(cmd.Symmetric); err != nil {
		return nil, err
	}
	var salt []byte
	tpmKey := c.handles[0]
	if tpmKey == rhNull {
		if len(cmd.EncryptedSalt.Buffer) != 0 {
			return nil, rcP(rcValue, 2, "salt without tpmKey")
		}
	} else {
		o, err := t.loadedObject(tpmKey, 1)
		if err != nil {
			return nil, err
		}
		salt, err = t.decryptSecret(o, cmd.EncryptedSalt.Buffer, "SECRET", 2, 1)
		if err != nil {
			return nil, err
		}
	}
	s := &session{hashAlg: cmd.AuthHash, hash: h, sym: cmd.Symmetric, policy: st != seHMAC, trial: st == seTrial}
	if bind := c.handles[1]; bind != rhNull {
		e, err := t.resolve(bind, 2, false)
		if err != nil {
			return nil, err
		}
		// A session bound to a PIN index would use its authValue
		// without counting it (Part 3 §11.1).
		if e.nv != nil && e.nv.isPin() {
			return nil, rcH(rcHandle, 2, "a PIN index cannot be bound")
		}
		s.bound, s.bindName, s.bindAuth = true, e.name, append([]byte{}, trimAuth(e.auth)...)
	}
	handle, err := t.allocSessionHandle(s.policy)
	if err != nil {
		return nil, err
	}
	s.handle = handle
	s.startMS = t.timeMS()
	s.nonceTPM = t.randBytes(h.Size())
	if s.bound || len(salt) != 0 {
		s.sessionKey = gt.KDFa(h, append(append([]byte{}, s.bindAuth...), salt...), "ATH", s.nonceTPM, nc, h.Size()*8)
	}
	s.resetPolicy()
	t.sessions[handle] = s
	return &gt.StartAuthSessionResponse{SessionHandle: gt.TPMHandle(handle), NonceTPM: gt.TPM2BNonce{Buffer: s.nonceTPM}}, nil
}
