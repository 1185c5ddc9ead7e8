package tpm12

import "encoding/binary"

// The TPM 1.2 structures this engine sends and receives, TPM Main Part 2
// (rev 116), with their marshalling: go-tpm has none for TPM 1.2. All
// integers are big-endian; a BOOL is one byte.

// Structure tags, Part 2 §3.1 (TPM_STRUCTURE_TAG).
const (
	tagPermanentFlags uint16 = 0x001F // TPM_TAG_PERMANENT_FLAGS
	tagSTClearFlags   uint16 = 0x0020 // TPM_TAG_STCLEAR_FLAGS
	tagCapVersionInfo uint16 = 0x0030 // TPM_TAG_CAP_VERSION_INFO
)

// digestSize is the size of a TPM_DIGEST, TPM_NONCE, TPM_AUTHDATA and
// TPM_PCRVALUE (SHA-1), Part 2 §5.4.
const digestSize = 20

// digest is a TPM_DIGEST (and its aliases TPM_PCRVALUE, TPM_NONCE,
// TPM_AUTHDATA, TPM_SECRET).
type digest [digestSize]byte

// reader unmarshals a parameter area. A read past the end sets short and
// yields zeros, so a handler decodes a whole structure and the
// dispatcher answers TPM_BAD_PARAM_SIZE once; a structure that checks a
// field as it reads it (as TPM_PCR_SELECTION's sizeOfSelect) records its
// error with fail, and reading stops there.
type reader struct {
	b     []byte
	short bool
	err   error
}

// fail records err as the outcome of decoding, unless the parameters
// already ran short or failed.
func (r *reader) fail(err error) {
	if !r.short && r.err == nil {
		r.err = err
		r.b = nil
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return make([]byte, max(n, 0))
	}
	if n < 0 || len(r.b) < n {
		r.short = true
		r.b = nil
		return make([]byte, max(n, 0))
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() uint8   { return r.take(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) bool() bool  { return r.u8() != 0 }

func (r *reader) digest() (d digest) {
	copy(d[:], r.take(digestSize))
	return d
}

// sized reads a UINT32-sized byte array no longer than limit.
func (r *reader) sized(limit int) []byte {
	n := r.u32()
	if n > uint32(limit) {
		r.short = true
		return nil
	}
	return r.take(int(n))
}

// writer marshals a parameter area.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) bytes(p []byte) {
	w.b = append(w.b, p...)
}
func (w *writer) bool(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

// sized writes a UINT32 size and the bytes.
func (w *writer) sized(p []byte) {
	w.u32(uint32(len(p)))
	w.bytes(p)
}

// pcrSelection is TPM_PCR_SELECTION, Part 2 §8.1: a bitmap of PCRs,
// PCR n in bit n%8 of byte n/8.
type pcrSelection struct {
	Select []byte
}

// maxSelect is the largest sizeOfSelect accepted: the bitmap of 24 PCRs.
const maxSelect = pcrCount / 8

func (s *pcrSelection) unmarshal(r *reader) {
	n := r.u16()
	if n > maxSelect {
		r.fail(rcE(rcInvalidPCRInfo, "sizeOfSelect %d", n))
	}
	s.Select = r.take(int(n))
}

func (s *pcrSelection) marshal(w *writer) {
	w.u16(uint16(len(s.Select)))
	w.bytes(s.Select)
}

// selected returns the PCR indices set in the bitmap.
func (s *pcrSelection) selected() []int {
	var out []int
	for i, b := range s.Select {
		for j := 0; j < 8; j++ {
			if b&(1<<j) != 0 {
				out = append(out, i*8+j)
			}
		}
	}
	return out
}

// pcrComposite is TPM_PCR_COMPOSITE, Part 2 §8.2: a selection and the
// values of the selected PCRs, in index order.
type pcrComposite struct {
	Select pcrSelection
	Values []digest
}

func (c *pcrComposite) marshal(w *writer) {
	c.Select.marshal(w)
	w.u32(uint32(len(c.Values) * digestSize))
	for _, v := range c.Values {
		w.bytes(v[:])
	}
}

// pcrInfoShort is TPM_PCR_INFO_SHORT, Part 2 §8.6.
type pcrInfoShort struct {
	Select            pcrSelection
	LocalityAtRelease uint8
	DigestAtRelease   digest
}

func (p *pcrInfoShort) unmarshal(r *reader) {
	p.Select.unmarshal(r)
	p.LocalityAtRelease = r.u8()
	p.DigestAtRelease = r.digest()
}

func (p *pcrInfoShort) marshal(w *writer) {
	p.Select.marshal(w)
	w.u8(p.LocalityAtRelease)
	w.bytes(p.DigestAtRelease[:])
}

// Algorithms, encryption and signature schemes, Part 2 §4.8, §4.9.
const (
	algRSA              uint32 = 0x00000001 // TPM_ALG_RSA
	algSHA              uint32 = 0x00000004 // TPM_ALG_SHA
	algHMAC             uint32 = 0x00000005 // TPM_ALG_HMAC
	algAES128           uint32 = 0x00000006 // TPM_ALG_AES128
	algMGF1             uint32 = 0x00000007 // TPM_ALG_MGF1
	esRSAESOAEPSHA1MGF1 uint16 = 0x0003     // TPM_ES_RSAESOAEP_SHA1_MGF1
	ssNone              uint16 = 0x0001     // TPM_SS_NONE
	rsaKeyParmsSize            = 12         // TPM_RSA_KEY_PARMS with the default exponent
	defaultRSAExponent         = 65537
	ekBits                     = 2048
	ekNumPrimes                = 2
	maxKeyParmsBytes           = 1024
	maxPubKeyBytes             = 1024
)

// keyParms is TPM_KEY_PARMS, Part 2 §10.1; Parms is the marshalled
// TPM_RSA_KEY_PARMS (§10.1.1) for RSA keys.
type keyParms struct {
	AlgorithmID uint32
	EncScheme   uint16
	SigScheme   uint16
	Parms       []byte
}

// unmarshal reads a TPM_KEY_PARMS and, as libtpms does as it reads one,
// decodes the TPM_RSA_KEY_PARMS of an RSA key (too short:
// TPM_BAD_PARAM_SIZE; bytes after it are not looked at) and refuses
// other algorithms (TPM_BAD_KEY_PROPERTY) but 0, an empty structure.
func (k *keyParms) unmarshal(r *reader) {
	k.AlgorithmID = r.u32()
	k.EncScheme = r.u16()
	k.SigScheme = r.u16()
	k.Parms = r.sized(maxKeyParmsBytes)
	switch k.AlgorithmID {
	case 0:
	case algRSA:
		var p rsaKeyParms
		pr := &reader{b: k.Parms}
		p.unmarshal(pr)
		if pr.short {
			r.fail(rcE(rcBadParamSize, "TPM_RSA_KEY_PARMS"))
		}
	default:
		r.fail(rcE(rcBadKeyProperty, "algorithm %#x", k.AlgorithmID))
	}
}

func (k *keyParms) marshal(w *writer) {
	w.u32(k.AlgorithmID)
	w.u16(k.EncScheme)
	w.u16(k.SigScheme)
	w.sized(k.Parms)
}

// rsaKeyParms is TPM_RSA_KEY_PARMS, Part 2 §10.1.1; an empty Exponent
// means 65537.
type rsaKeyParms struct {
	KeyLength uint32
	NumPrimes uint32
	Exponent  []byte
}

func (p *rsaKeyParms) marshal(w *writer) {
	w.u32(p.KeyLength)
	w.u32(p.NumPrimes)
	w.sized(p.Exponent)
}

func (p *rsaKeyParms) unmarshal(r *reader) {
	p.KeyLength = r.u32()
	p.NumPrimes = r.u32()
	p.Exponent = r.sized(maxPubKeyBytes)
}

// pubKey is TPM_PUBKEY, Part 2 §10.5: the key parameters and the
// TPM_STORE_PUBKEY (§10.4), the RSA modulus.
type pubKey struct {
	AlgorithmParms keyParms
	Key            []byte
}

func (p *pubKey) unmarshal(r *reader) {
	p.AlgorithmParms.unmarshal(r)
	p.Key = r.sized(maxPubKeyBytes)
}

func (p *pubKey) marshal(w *writer) {
	p.AlgorithmParms.marshal(w)
	w.sized(p.Key)
}

// version is TPM_VERSION, Part 2 §5.3, and TPM_STRUCT_VER (§5.1).
type version struct {
	Major, Minor, RevMajor, RevMinor uint8
}

func (v *version) marshal(w *writer) {
	w.bytes([]byte{v.Major, v.Minor, v.RevMajor, v.RevMinor})
}

// capVersionInfo is TPM_CAP_VERSION_INFO, Part 2 §21.6.
type capVersionInfo struct {
	Version        version
	SpecLevel      uint16
	ErrataRev      uint8
	TPMVendorID    [4]byte
	VendorSpecific []byte
}

func (c *capVersionInfo) marshal(w *writer) {
	w.u16(tagCapVersionInfo)
	c.Version.marshal(w)
	w.u16(c.SpecLevel)
	w.u8(c.ErrataRev)
	w.bytes(c.TPMVendorID[:])
	w.u16(uint16(len(c.VendorSpecific)))
	w.bytes(c.VendorSpecific)
}

// permanentFlags is TPM_PERMANENT_FLAGS, Part 2 §7.1, in wire order.
type permanentFlags struct {
	Disable                      bool
	Ownership                    bool
	Deactivated                  bool
	ReadPubek                    bool
	DisableOwnerClear            bool
	AllowMaintenance             bool
	PhysicalPresenceLifetimeLock bool
	PhysicalPresenceHWEnable     bool
	PhysicalPresenceCMDEnable    bool
	CEKPUsed                     bool
	TPMpost                      bool
	TPMpostLock                  bool
	FIPS                         bool
	Operator                     bool
	EnableRevokeEK               bool
	NVLocked                     bool
	ReadSRKPub                   bool
	TPMEstablished               bool
	MaintenanceDone              bool
	DisableFullDALogicInfo       bool
}

func (f *permanentFlags) marshal(w *writer) {
	w.u16(tagPermanentFlags)
	for _, b := range []bool{f.Disable, f.Ownership, f.Deactivated, f.ReadPubek,
		f.DisableOwnerClear, f.AllowMaintenance, f.PhysicalPresenceLifetimeLock,
		f.PhysicalPresenceHWEnable, f.PhysicalPresenceCMDEnable, f.CEKPUsed, f.TPMpost,
		f.TPMpostLock, f.FIPS, f.Operator, f.EnableRevokeEK, f.NVLocked, f.ReadSRKPub,
		f.TPMEstablished, f.MaintenanceDone, f.DisableFullDALogicInfo} {
		w.bool(b)
	}
}

// stclearFlags is TPM_STCLEAR_FLAGS, Part 2 §7.2.
type stclearFlags struct {
	Deactivated          bool
	DisableForceClear    bool
	PhysicalPresence     bool
	PhysicalPresenceLock bool
	BGlobalLock          bool
}

func (f *stclearFlags) marshal(w *writer) {
	w.u16(tagSTClearFlags)
	for _, b := range []bool{f.Deactivated, f.DisableForceClear, f.PhysicalPresence,
		f.PhysicalPresenceLock, f.BGlobalLock} {
		w.bool(b)
	}
}

// handleList is TPM_KEY_HANDLE_LIST, Part 2 §21.4 (also used for the
// other resource types of TPM_CAP_HANDLE).
type handleList []uint32

func (l handleList) marshal(w *writer) {
	w.u16(uint16(len(l)))
	for _, h := range l {
		w.u32(h)
	}
}
