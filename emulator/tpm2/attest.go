package tpm2

import (
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
)

// Attestation, Part 3 §18, and the clock, Part 3 §29.

// TPMI_ST_ATTEST values, Part 2 §6.9.
const (
	stAttestCertify      uint16 = 0x8017
	stAttestQuote        uint16 = 0x8018
	stAttestTime         uint16 = 0x8019
	stAttestCreation     uint16 = 0x801A
	stAttestNV           uint16 = 0x8014
	stAttestNVDigest     uint16 = 0x801C
	stAttestSession      uint16 = 0x8016
	stAttestCommandAudit uint16 = 0x8015
)

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

// timeInfo is TPMS_TIME_INFO.
func (t *TPM) timeInfo() gt.TPMSTimeInfo {
	return gt.TPMSTimeInfo{Time: t.timeMS(), ClockInfo: gt.TPMSClockInfo{
		Clock: t.clockMS(), ResetCount: t.ps.ResetCount, RestartCount: t.ps.RestartCount, Safe: !t.ps.ClockUnsafe}}
}

// timeMS is TPM time: milliseconds since the last TPM Reset/Restart.
func (t *TPM) timeMS() uint64 {
	return t.timeOffsetMS + t.sinceClockBase()
}

// sinceClockBase is the milliseconds Clock and TPM time advanced since
// clockBase: the host's elapsed time at the rate ClockRateAdjust set.
func (t *TPM) sinceClockBase() uint64 {
	d := t.now().Sub(t.clockBase).Milliseconds()
	if d < 0 {
		return 0
	}
	return uint64(d) * uint64(clockNominal+t.clockAdjust) / clockNominal
}

// Clock rate adjustment, Part 3 §29.3: in steps of the nominal rate's
// 1/clockNominal, bounded (the reference implementation's granularity and
// limit: about 1%, 0.1% and 0.003% steps, at most ±1/6).
const (
	clockNominal      = 30000
	clockAdjustCoarse = 300
	clockAdjustMedium = 30
	clockAdjustFine   = 1
	clockAdjustLimit  = 5000
)

// clockRateAdjust is TPM2_ClockRateAdjust, Part 3 §29.3. The rate is
// volatile: _TPM_Init restores the nominal rate.
func (t *TPM) clockRateAdjust(c *call, cmd *clockRateAdjustCmd) (*emptyResponse, error) {
	if c.handles[0] != rhOwner && c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "ClockRateAdjust needs owner or platform")
	}
	step := map[int8]int32{-3: -clockAdjustCoarse, -2: -clockAdjustMedium, -1: -clockAdjustFine, 0: 0,
		1: clockAdjustFine, 2: clockAdjustMedium, 3: clockAdjustCoarse}
	d, ok := step[int8(cmd.RateAdjust)]
	if !ok {
		return nil, rcP(rcValue, 1, "rateAdjust %d", int8(cmd.RateAdjust))
	}
	// Fold what ran at the old rate into the offsets, then change it.
	t.clockOffsetMS, t.timeOffsetMS = t.clockMS(), t.timeMS()
	t.clockBase = t.now()
	t.clockAdjust = min(max(t.clockAdjust+d, -clockAdjustLimit), clockAdjustLimit)
	return nil, nil
}

// attest builds TPMS_ATTEST (Part 2 §10.12.12) and signs it with the key
// at signHandle (TPM_RH_NULL: no signature).
func (t *TPM) attest(signH uint32, n int, typ uint16, extra []byte, scheme *gt.TPMTSigScheme, body []byte) (gt.TPM2BAttest, gt.TPMTSignature, error) {
	var none gt.TPM2BAttest
	var signer *object
	var qn []byte
	if signH != rhNull {
		o, err := t.loadedObject(signH, n)
		if err != nil {
			return none, nullSignature, err
		}
		if !o.attrs().SignEncrypt || o.publicOnly || o.pub.Type == gt.TPMAlgSymCipher {
			return none, nullSignature, rcH(rcKey, n, "not a signing key")
		}
		signer, qn = o, o.qn
	}
	if len(extra) > 64 {
		return none, nullSignature, rcP(rcSize, 1, "qualifyingData too long")
	}
	a := append([]byte{}, tpmGenerated...)
	a = append(a, u16(typ)...)
	a = append(a, sized(qn)...)
	a = append(a, sized(extra)...)
	a = append(a, t.clockInfo()...)
	a = binary.BigEndian.AppendUint64(a, uint64(firmwareVersion1)<<32)
	a = append(a, body...)
	if signer == nil {
		return gt.BytesAs2B[gt.TPMSAttest](a), nullSignature, nil
	}
	alg, h, ha, err := signScheme(signer, scheme, 2)
	if err != nil {
		return none, nullSignature, err
	}
	d := h.New()
	d.Write(a)
	sig, err := t.signDigest(signer, alg, h, ha, scheme, d.Sum(nil))
	if err != nil {
		return none, nullSignature, err
	}
	return gt.BytesAs2B[gt.TPMSAttest](a), sig, err
}

// quote is TPM2_Quote, Part 3 §18.4.
func (t *TPM) quote(c *call, cmd *gt.Quote) (*gt.QuoteResponse, error) {
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
	body := appendPCRSelection(nil, &cmd.PCRSelect)
	body = append(body, sized(t.pcrDigest(h, cmd.PCRSelect))...)
	info, sig, err := t.attest(c.handles[0], 1, stAttestQuote, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	if err != nil {
		return nil, err
	}
	return &gt.QuoteResponse{Quoted: info, Signature: sig}, nil
}

// certify is TPM2_Certify, Part 3 §18.2.
func (t *TPM) certify(c *call, cmd *gt.Certify) (*gt.CertifyResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	body := append(sized(o.name), sized(o.qn)...)
	info, sig, err := t.attest(c.handles[1], 2, stAttestCertify, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	if err != nil {
		return nil, err
	}
	return &gt.CertifyResponse{CertifyInfo: info, Signature: sig}, nil
}

// certifyCreation is TPM2_CertifyCreation, Part 3 §18.3.
func (t *TPM) certifyCreation(c *call, cmd *gt.CertifyCreation) (*gt.CertifyCreationResponse, error) {
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
	info, sig, err := t.attest(c.handles[0], 1, stAttestCreation, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	if err != nil {
		return nil, err
	}
	return &gt.CertifyCreationResponse{CertifyInfo: info, Signature: sig}, nil
}

// getTime is TPM2_GetTime, Part 3 §18.7.
func (t *TPM) getTime(c *call, cmd *getTimeCmd) (*gt.GetTimeResponse, error) {
	if c.handles[0] != rhEndorsement {
		return nil, rcH(rcValue, 1, "privacy admin must be the endorsement hierarchy")
	}
	body := binary.BigEndian.AppendUint64(nil, t.timeMS())
	body = append(body, t.clockInfo()...)
	body = binary.BigEndian.AppendUint64(body, uint64(firmwareVersion1)<<32)
	info, sig, err := t.attest(c.handles[1], 2, stAttestTime, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	if err != nil {
		return nil, err
	}
	return &gt.GetTimeResponse{TimeInfo: info, Signature: sig}, nil
}

// getSessionAuditDigest is TPM2_GetSessionAuditDigest, Part 3 §18.5.
func (t *TPM) getSessionAuditDigest(c *call, cmd *gt.GetSessionAuditDigest) (*gt.GetSessionAuditDigestResponse, error) {
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
	info, sig, err := t.attest(c.handles[1], 2, stAttestSession, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	if err != nil {
		return nil, err
	}
	return &gt.GetSessionAuditDigestResponse{AuditInfo: info, Signature: sig}, nil
}

// readClock is TPM2_ReadClock, Part 3 §29.1.
func (t *TPM) readClock(c *call, cmd *gt.ReadClock) (*gt.ReadClockResponse, error) {
	return &gt.ReadClockResponse{CurrentTime: t.timeInfo()}, nil
}

// clockSet is TPM2_ClockSet, Part 3 §29.2.
func (t *TPM) clockSet(c *call, cmd *clockSetCmd) (*emptyResponse, error) {
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
}
