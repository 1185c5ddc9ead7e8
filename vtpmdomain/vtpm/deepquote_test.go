package vtpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	gt "github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/internal/mgrtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// A guest's deep quote through the server and the real manager: it binds
// the guest's nonce, this vTPM's UUID and the PCR values the guest reads.
func TestDeepQuoteFromGuest(t *testing.T) {
	uuid := [16]byte{1, 2, 3}
	mgr := mgrtest.Start(t)
	mgr.AddVTPM(t, uuid)
	ask := func(req []byte) ([]byte, error) { return mgr.Ask(req, proto.PeerInfo{DomID: 5, UUID: uuid}) }
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Log: nopLog{},
		DeepQuote: func(m proto.DeepQuote) ([]byte, error) {
			req, err := proto.EncodeDeepQuote(m)
			if err != nil {
				return nil, err
			}
			return ask(req)
		}})
	if err != nil {
		t.Fatal(err)
	}
	tr := serverTransport{s}
	if _, err := (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 16, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: make([]byte, 32)}}}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	rd, err := (gt.PCRRead{PCRSelectionIn: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(16)}}}}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	pcr16 := rd.PCRValues.Digests[0].Buffer

	nonce := []byte("a verifier's nonce")
	cmd, err := deepquote.EncodeCommand(nonce, 1<<16|1<<0)
	if err != nil {
		t.Fatal(err)
	}
	q, err := deepquote.DecodeResponse(s.Handle(Peer{Name: "guest"}, 0, cmd))
	if err != nil {
		t.Fatal(err)
	}
	ak, err := mgr.Dom0().GroupAK(0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := deepquote.Verify(q, deepquote.Trust{AK: ak.AK, Nonce: nonce, VTPM: &uuid, VTPMPCRs: map[int][]byte{16: pcr16}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Approval != -1 || len(r.HWPCRs) == 0 || s.Stats().DeepQuotes != 1 {
		t.Errorf("result %+v, stats %+v", r, s.Stats())
	}

	// Malformed: a nonce longer than its size says, a bitmap beyond PCR
	// 23, a session tag. Nothing reaches the manager, nothing changes.
	bad := bytes.Clone(cmd)
	bad[11]++
	long := bytes.Clone(cmd)
	long[len(long)-4] = 1
	sess := bytes.Clone(cmd)
	sess[1] = 0x02
	for name, c := range map[string][]byte{"size": bad, "bitmap": long, "tag": sess, "short": cmd[:11]} {
		if _, err := deepquote.DecodeResponse(s.Handle(Peer{Name: "guest"}, 0, c)); err == nil {
			t.Errorf("%s: answered with a quote", name)
		}
	}

	// A manager that asks to retry twice: the server waits for it, the
	// guest gets its quote.
	busy := 2
	patient, err := NewServer(Config{Options: Options{Startup: StartupClear}, Log: nopLog{},
		DeepQuote: func(m proto.DeepQuote) ([]byte, error) {
			if busy > 0 {
				busy--
				return nil, &proto.Error{Code: proto.TPMRetry}
			}
			req, _ := proto.EncodeDeepQuote(m)
			return ask(req)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deepquote.DecodeResponse(patient.Handle(Peer{Name: "guest"}, 0, cmd)); err != nil || busy != 0 {
		t.Fatalf("after two retries: %v", err)
	}

	// Without a manager: TPM_RC_COMMAND_CODE.
	alone, err := NewServer(Config{Options: Options{Startup: StartupClear}, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = deepquote.DecodeResponse(alone.Handle(Peer{Name: "guest"}, 0, cmd))
	if re, ok := err.(*deepquote.ResponseError); !ok || re.Code != quote20.rcCommand {
		t.Errorf("without a manager: %v", err)
	}
}

// The TPM 1.2 personality's TPM_ORD_DeepQuote: the same evidence, of the
// vTPM's SHA-1 PCRs, in vtpm-stubdom's request shape.
func TestDeepQuoteFromTPM12Guest(t *testing.T) {
	uuid := [16]byte{1, 2, 4}
	mgr := mgrtest.Start(t)
	mgr.AddVTPM(t, uuid)
	s := new12(t, Config{DeepQuote: func(m proto.DeepQuote) ([]byte, error) {
		req, err := proto.EncodeDeepQuote(m)
		if err != nil {
			return nil, err
		}
		return mgr.Ask(req, proto.PeerInfo{DomID: 5, UUID: uuid})
	}})
	send12(t, s, cmd12(ord12Extend, be32(16), bytes.Repeat([]byte{7}, 20)))
	pcr16 := pcr12(t, s, 16)

	nonce := bytes.Repeat([]byte{0xA5}, 20)
	cmd, err := deepquote.EncodeCommand12(nonce, 1<<16|1<<4)
	if err != nil {
		t.Fatal(err)
	}
	q, err := deepquote.DecodeResponse(s.Handle(guest, 0, cmd))
	if err != nil {
		t.Fatal(err)
	}
	ak, err := mgr.Dom0().GroupAK(0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := deepquote.Verify(q, deepquote.Trust{AK: ak.AK, Nonce: nonce, VTPM: &uuid, VTPMPCRs: map[int][]byte{4: make([]byte, 20), 16: pcr16}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Binding.VTPMBank != deepquote.BankSHA1 || len(q.VTPMPCRValues[1]) != 20 || s.Stats().DeepQuotes != 1 {
		t.Errorf("binding %+v, values %x, stats %+v", r.Binding, q.VTPMPCRValues, s.Stats())
	}
	// vtpm-stubdom's form with extraInfoFlags 0 is served too.
	withFlags := append(bytes.Clone(cmd), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(withFlags[2:], uint32(len(withFlags)))
	if _, err := deepquote.DecodeResponse(s.Handle(guest, 0, withFlags)); err != nil {
		t.Errorf("with extraInfoFlags 0: %v", err)
	}

	// Refused with TPM_BAD_PARAMETER: hardware PCRs chosen by the guest,
	// extraInfoFlags set, a short nonce, a selection of 4 bytes, a
	// command with authorization.
	hw := bytes.Clone(cmd)
	hw = append(hw[:len(hw)-2], 0, 1, 0x01)
	flags := append(bytes.Clone(cmd), 0, 0, 0, 1)
	short := append(cmd12(deepquote.CommandCode12, nonce[:19]), 0, 0, 0, 0)
	wide := append(cmd12(deepquote.CommandCode12, nonce), 0, 4, 1, 0, 0, 0, 0, 0)
	auth := bytes.Clone(cmd)
	auth[1] = 0xC2
	for name, c := range map[string][]byte{"hardware PCRs": hw, "flags": flags, "short nonce": short, "4-byte selection": wide, "auth tag": auth} {
		binary.BigEndian.PutUint32(c[2:], uint32(len(c)))
		var re *deepquote.ResponseError
		if _, err := deepquote.DecodeResponse(s.Handle(guest, 0, c)); !errors.As(err, &re) || re.Code != quote12.rcParams {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The TPM 2.0 command is no deep quote to a TPM 1.2.
	cmd20, _ := deepquote.EncodeCommand(nonce, 1)
	if _, err := deepquote.DecodeResponse(s.Handle(guest, 0, cmd20)); err == nil {
		t.Error("a TPM 1.2 vTPM answered the TPM 2.0 deep quote command")
	}
	if s.Stats().DeepQuotes != 2 {
		t.Errorf("stats %+v", s.Stats())
	}

	// Without a manager: TPM_BAD_ORDINAL, as for any ordinal it lacks.
	alone := new12(t, Config{})
	var re *deepquote.ResponseError
	if _, err := deepquote.DecodeResponse(alone.Handle(guest, 0, cmd)); !errors.As(err, &re) || re.Code != 0x0A {
		t.Errorf("without a manager: %v", err)
	}
}
