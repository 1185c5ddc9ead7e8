package tpm2

import (
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Attestation, Part 3 §18, and the clock, Part 3 §29.

// TPMI_ST_ATTEST values, Part 2 §6.9.
const (
	stAttestCertify  uint16 = 0x8017
	stAttestQuote    uint16 = 0x8018
	stAttestTime     uint16 = 0x8019
	stAttestCreation uint16 = 0x801A
	stAttestNV       uint16 = 0x8014
	stAttestSession  uint16 = 0x8016
)

type getTimeCmd struct {
	PrivacyAdminHandle gt.UnmarshalledHandle `gotpm:"handle,auth"`
	SignHandle         gt.UnmarshalledHandle `gotpm:"handle,auth"`
	QualifyingData     gt.TPM2BData
	InScheme           gt.TPMTSigScheme
}

func (getTimeCmd) Command() gt.TPMCC { return gt.TPMCCGetTime }
func (getTimeCmd) Execute(transport.TPM, ...gt.Session) (*gt.GetTimeResponse, error) {
	return nil, errEngineSide
}

type clockSetCmd struct {
	Auth    gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NewTime uint64
}

func (clockSetCmd) Command() gt.TPMCC { return gt.TPMCCClockSet }
func (clockSetCmd) Execute(transport.TPM, ...gt.Session) (*noResponse, error) {
	return nil, errEngineSide
}

// clockInfo is TPMS_CLOCK_INFO.
func (t *TPM) clockInfo() []byte {
	b := binary.BigEndian.AppendUint64(nil, t.clockMS())
	b = append(b, u32(t.ps.ResetCount)...)
	b = append(b, u32(t.ps.RestartCount)...)
	if t.ps.ClockUnsafe {
		return append(b, 0)
	}
	return append(b, 1)
}

// timeMS is TPM time: milliseconds since the last TPM Reset/Restart.
func (t *TPM) timeMS() uint64 {
	d := t.now().Sub(t.clockBase).Milliseconds()
	if d < 0 {
		d = 0
	}
	return uint64(d)
}

// attest builds TPMS_ATTEST (Part 2 §10.12.12) and signs it with the key
// at signHandle (TPM_RH_NULL: no signature).
func (t *TPM) attest(signH uint32, n int, typ uint16, extra []byte, scheme *gt.TPMTSigScheme, body []byte) (*reply, error) {
	var signer *object
	var qn []byte
	if signH != rhNull {
		o, err := t.loadedObject(signH, n)
		if err != nil {
			return nil, err
		}
		if !o.attrs().SignEncrypt || o.publicOnly || o.pub.Type == gt.TPMAlgSymCipher {
			return nil, rcH(rcKey, n, "not a signing key")
		}
		signer, qn = o, o.qn
	}
	if len(extra) > 64 {
		return nil, rcP(rcSize, 1, "qualifyingData too long")
	}
	a := append([]byte{}, tpmGenerated...)
	a = append(a, u16(typ)...)
	a = append(a, sized(qn)...)
	a = append(a, sized(extra)...)
	a = append(a, t.clockInfo()...)
	a = binary.BigEndian.AppendUint64(a, uint64(firmwareVersion1)<<32)
	a = append(a, body...)
	if signer == nil {
		return &reply{params: append(sized(a), u16(uint16(gt.TPMAlgNull))...)}, nil
	}
	alg, h, ha, err := signScheme(signer, scheme, 2)
	if err != nil {
		return nil, err
	}
	d := h.New()
	d.Write(a)
	sig, err := t.signDigest(signer, alg, h, ha, d.Sum(nil))
	if err != nil {
		return nil, err
	}
	return &reply{params: append(sized(a), sig...)}, nil
}

func init() {
	register(func(t *TPM, c *call, cmd *gt.Quote) (*reply, error) {
		if err := validPCRSelection(cmd.PCRSelect, 3); err != nil {
			return nil, err
		}
		var signer *object
		if c.handles[0] != rhNull {
			o, err := t.loadedObject(c.handles[0], 1)
			if err != nil {
				return nil, err
			}
			signer = o
		}
		h := cryptoSHA256
		if signer != nil {
			if _, sh, _, err := signScheme(signer, &cmd.InScheme, 2); err == nil {
				h = sh
			}
		}
		// The quoted selection lists only allocated banks' PCRs.
		body := marshal(&cmd.PCRSelect)
		body = append(body, sized(t.pcrDigest(h, cmd.PCRSelect))...)
		return t.attest(c.handles[0], 1, stAttestQuote, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	})
	register(func(t *TPM, c *call, cmd *gt.Certify) (*reply, error) {
		o, err := t.loadedObject(c.handles[0], 1)
		if err != nil {
			return nil, err
		}
		body := append(sized(o.name), sized(o.qn)...)
		return t.attest(c.handles[1], 2, stAttestCertify, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	}, roleAdmin, roleUser)
	register(func(t *TPM, c *call, cmd *gt.CertifyCreation) (*reply, error) {
		o, err := t.loadedObject(c.handles[1], 2)
		if err != nil {
			return nil, err
		}
		h, _ := o.pub.NameAlg.Hash()
		tk := cmd.CreationTicket
		if tk.Tag != gt.TPMSTCreation || !t.checkTicket(stCreation, uint32(tk.Hierarchy), tk.Digest.Buffer, h, o.name, cmd.CreationHash.Buffer) {
			return nil, rcP(rcTicket, 4, "creation ticket")
		}
		body := append(sized(o.name), sized(cmd.CreationHash.Buffer)...)
		return t.attest(c.handles[0], 1, stAttestCreation, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	})
	register(func(t *TPM, c *call, cmd *getTimeCmd) (*reply, error) {
		if c.handles[0] != rhEndorsement {
			return nil, rcH(rcValue, 1, "privacy admin must be the endorsement hierarchy")
		}
		body := binary.BigEndian.AppendUint64(nil, t.timeMS())
		body = append(body, t.clockInfo()...)
		body = binary.BigEndian.AppendUint64(body, uint64(firmwareVersion1)<<32)
		return t.attest(c.handles[1], 2, stAttestTime, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	})
	register(func(t *TPM, c *call, cmd *gt.GetSessionAuditDigest) (*reply, error) {
		if c.handles[0] != rhEndorsement {
			return nil, rcH(rcValue, 1, "privacy admin must be the endorsement hierarchy")
		}
		s := t.sessions[c.handles[2]]
		if s == nil || s.isPolicy() || s.auditDigest == nil {
			return nil, rcH(rcType, 3, "not an HMAC audit session")
		}
		excl := byte(0)
		if t.exclusiveAudit == s.handle {
			excl = 1
		}
		body := append([]byte{excl}, sized(s.auditDigest)...)
		return t.attest(c.handles[1], 2, stAttestSession, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	})
	register(func(t *TPM, c *call, cmd *gt.ReadClock) (*reply, error) {
		b := binary.BigEndian.AppendUint64(nil, t.timeMS())
		return &reply{params: append(b, t.clockInfo()...)}, nil
	})
	register(func(t *TPM, c *call, cmd *clockSetCmd) (*reply, error) {
		if c.handles[0] != rhOwner && c.handles[0] != rhPlatform {
			return nil, rcH(rcValue, 1, "ClockSet needs owner or platform")
		}
		now := t.clockMS()
		if cmd.NewTime < now {
			return nil, rcP(rcValue, 1, "the clock only moves forward")
		}
		if cmd.NewTime > 0xFFFF000000000000 {
			return nil, rcP(rcValue, 1, "newTime too large")
		}
		t.clockOffsetMS += cmd.NewTime - now
		return nil, nil
	})
}
