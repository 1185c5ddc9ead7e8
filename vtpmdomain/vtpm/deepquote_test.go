package vtpm

import (
	"bytes"
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
	if re, ok := err.(*deepquote.ResponseError); !ok || re.Code != rcCommandCode {
		t.Errorf("without a manager: %v", err)
	}
}
