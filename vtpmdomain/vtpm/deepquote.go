package vtpm

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// Deep quotes (attest/deepquote; docs/deep-quote.md). A guest sends the
// vendor command deepquote.CommandCode (TPM 2.0; CommandCode12,
// TPM_ORD_DeepQuote, to the TPM 1.2 personality) with its verifier's
// nonce and the vTPM PCRs to bind; the server reads those PCRs (SHA-256;
// SHA-1 on TPM 1.2), has the manager quote
// them with the hardware TPM (DEEP_QUOTE: the manager names this vTPM by
// the UUID Xen gave it), checks the manager bound what it asked, and
// answers with the Bundle. The command changes no TPM state.

// quoteFamily is what differs between the families' deep quote
// commands: their code, parameters, PCR bank and response codes (TPM 2.0
// Part 2, 6.6; TPM 1.2 Part 2, 16).
type quoteFamily struct {
	tag    uint16 // the command's tag: no sessions, no authorization
	code   uint32
	decode func(params []byte) (nonce []byte, pcrs uint32, ok bool)
	bank   uint16
	// rcCommand: no manager, or hardware under it with no deep quotes;
	// rcParams: malformed parameters; rcBank: the bank is not there;
	// rcRetry: the manager rations deep quotes.
	rcCommand, rcParams, rcBank, rcRetry uint32
	rcCommandName                        string
	// sizeBytes is the width of the response's size field before the
	// Bundle: a TPM2B's u16, TPM 1.2's u32.
	sizeBytes int
}

var (
	quote20 = &quoteFamily{tag: 0x8001, code: deepquote.CommandCode, decode: deepquote.DecodeCommand, bank: deepquote.BankSHA256,
		rcCommand: 0x143, rcParams: 0x095, rcBank: 0x084, rcRetry: 0x922, rcCommandName: "TPM_RC_COMMAND_CODE", sizeBytes: 2}
	quote12 = &quoteFamily{tag: 0x00C1, code: deepquote.CommandCode12, decode: deepquote.DecodeCommand12, bank: deepquote.BankSHA1,
		rcCommand: 0x0A, rcParams: 0x03, rcBank: 0x03, rcRetry: 0x800, rcCommandName: "TPM_BAD_ORDINAL", sizeBytes: 4}
)

// quoteFamilyOf is the deep quote command cmd is, or nil.
func (s *Server) quoteFamilyOf(cmd []byte) *quoteFamily {
	q := s.fam.quote
	if len(cmd) < 10 || binary.BigEndian.Uint32(cmd[6:]) != q.code {
		return nil
	}
	return q
}

// pcrValues reads the engine's PCRs of the deep quote's bank.
func (s *Server) pcrValues(pcrs []uint) ([][]byte, error) {
	switch t := s.tpm.(type) {
	case *tpm2.TPM:
		return t.SHA256PCRs(pcrs)
	case tpm12Engine:
		return t.PCRValues(pcrs)
	}
	return nil, errors.New("no PCRs")
}

// How long the server waits for the manager's next deep quote: its
// ration refills one a second.
const (
	quoteWait    = 100 * time.Millisecond
	quoteWaitMax = 1500 * time.Millisecond
)

// deepQuote serves the command of family q (the server's lock held).
func (s *Server) deepQuote(from Peer, q *quoteFamily, cmd []byte) []byte {
	if s.askQuote == nil {
		return s.fam.response(q.rcCommand)
	}
	nonce, mask, ok := q.decode(cmd[10:])
	if !ok || binary.BigEndian.Uint16(cmd) != q.tag || int(binary.BigEndian.Uint32(cmd[2:])) != len(cmd) {
		return s.fam.response(q.rcParams)
	}
	vals, err := s.pcrValues(saa.PCRsOf(mask))
	if err != nil {
		return s.fam.response(q.rcBank)
	}
	req := proto.DeepQuote{Nonce: nonce, PCRs: mask, PCRDigest: deepquote.PCRDigest(vals), Bank: q.bank}
	// The manager rations deep quotes (a burst, then one a second): the
	// server waits for the next one rather than answer TPM_RC_RETRY at
	// once, which Linux's TPM driver resends on its own, and where a
	// guest's read of /dev/tpm0 has been seen to come back empty.
	var p []byte
	var pe *proto.Error
	for waited := time.Duration(0); ; waited += quoteWait {
		p, err = s.askQuote(req)
		if !errors.As(err, &pe) || pe.Code != proto.TPMRetry || waited >= quoteWaitMax {
			break
		}
		time.Sleep(quoteWait)
	}
	switch {
	case errors.As(err, &pe) && pe.Code == proto.TPMRetry:
		return s.fam.response(q.rcRetry)
	case errors.As(err, &pe) && pe.Code == proto.ReturnUnsupported:
		s.log.Infof("%s: deep quote: the manager gives none (%v): answered %s", from.Name, err, q.rcCommandName)
		return s.fam.response(q.rcCommand)
	case err != nil:
		s.log.Errorf("%s: deep quote: the manager answered %v: answered %s", from.Name, err, s.fam.nvUnavailableName)
		return s.fam.response(s.fam.rcNVUnavailable)
	}
	a, err := deepquote.ParseAnswer(p)
	if err == nil && (a.Binding.VTPMBank != q.bank || a.Binding.VTPMPCRs != mask || a.Binding.VTPMPCRDigest != req.PCRDigest || string(a.Binding.Nonce) != string(nonce)) {
		err = errors.New("the manager bound other PCRs or another nonce than asked")
	}
	var enc []byte
	if err == nil {
		enc, err = (&deepquote.Bundle{Answer: *a, VTPMPCRValues: vals}).Marshal()
	}
	if err != nil {
		s.log.Errorf("%s: deep quote: %v: answered %s", from.Name, err, s.fam.nvUnavailableName)
		return s.fam.response(s.fam.rcNVUnavailable)
	}
	// The family's success header, then the Bundle's size and the Bundle.
	rsp := s.fam.response(0)
	rsp = append(rsp, make([]byte, q.sizeBytes)...)
	if q.sizeBytes == 4 {
		binary.BigEndian.PutUint32(rsp[10:], uint32(len(enc)))
	} else {
		binary.BigEndian.PutUint16(rsp[10:], uint16(len(enc)))
	}
	rsp = append(rsp, enc...)
	binary.BigEndian.PutUint32(rsp[2:], uint32(len(rsp)))
	s.stats.DeepQuotes++
	return rsp
}
