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
// vendor command deepquote.CommandCode with its verifier's nonce and the
// vTPM PCRs to bind; the server reads those PCRs, has the manager quote
// them with the hardware TPM (DEEP_QUOTE: the manager names this vTPM by
// the UUID Xen gave it), checks the manager bound what it asked, and
// answers with the Bundle. The command changes no TPM state.

// Response codes of the deep quote command (TPM 2.0 Part 2, 6.6).
const (
	rcCommandCode = 0x143 // TPM_RC_COMMAND_CODE: no manager, or hardware under it with no deep quotes
	rcSize        = 0x095 // TPM_RC_SIZE: malformed parameters
	rcValue       = 0x084 // TPM_RC_VALUE: the SHA-256 bank is not allocated
	rcRetry       = 0x922 // TPM_RC_RETRY: the manager rations deep quotes
)

// How long the server waits for the manager's next deep quote: its
// ration refills one a second.
const (
	quoteWait    = 100 * time.Millisecond
	quoteWaitMax = 1500 * time.Millisecond
)

// deepQuote serves the command (the server's lock held).
func (s *Server) deepQuote(from Peer, cmd []byte) []byte {
	t, ok := s.tpm.(*tpm2.TPM)
	if !ok || s.askQuote == nil {
		return s.fam.response(rcCommandCode)
	}
	nonce, mask, ok := deepquote.DecodeCommand(cmd[10:])
	if !ok || binary.BigEndian.Uint16(cmd) != 0x8001 || int(binary.BigEndian.Uint32(cmd[2:])) != len(cmd) {
		return s.fam.response(rcSize)
	}
	vals, err := t.SHA256PCRs(saa.PCRsOf(mask))
	if err != nil {
		return s.fam.response(rcValue)
	}
	req := proto.DeepQuote{Nonce: nonce, PCRs: mask, PCRDigest: deepquote.PCRDigest(vals)}
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
		return s.fam.response(rcRetry)
	case errors.As(err, &pe) && pe.Code == proto.ReturnUnsupported:
		s.log.Infof("%s: deep quote: the manager gives none (%v): answered TPM_RC_COMMAND_CODE", from.Name, err)
		return s.fam.response(rcCommandCode)
	case err != nil:
		s.log.Errorf("%s: deep quote: the manager answered %v: answered TPM_RC_NV_UNAVAILABLE", from.Name, err)
		return s.fam.response(rcNVUnavailable)
	}
	a, err := deepquote.ParseAnswer(p)
	if err == nil && (a.Binding.VTPMPCRs != mask || a.Binding.VTPMPCRDigest != req.PCRDigest || string(a.Binding.Nonce) != string(nonce)) {
		err = errors.New("the manager bound other PCRs or another nonce than asked")
	}
	var enc []byte
	if err == nil {
		enc, err = (&deepquote.Bundle{Answer: *a, VTPMPCRValues: vals}).Marshal()
	}
	if err != nil {
		s.log.Errorf("%s: deep quote: %v: answered TPM_RC_NV_UNAVAILABLE", from.Name, err)
		return s.fam.response(rcNVUnavailable)
	}
	rsp := make([]byte, 12, 12+len(enc))
	binary.BigEndian.PutUint16(rsp, 0x8001)
	binary.BigEndian.PutUint32(rsp[2:], uint32(12+len(enc)))
	binary.BigEndian.PutUint16(rsp[10:], uint16(len(enc)))
	s.stats.DeepQuotes++
	return append(rsp, enc...)
}
