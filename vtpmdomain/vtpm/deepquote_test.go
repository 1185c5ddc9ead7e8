package vtpm

import (
	"bytes"
	"testing"

	gt "github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/manager"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

type memDisk struct{ data []byte }

func (d *memDisk) ReadAt(p []byte, s uint64) error  { copy(p, d.data[s*512:]); return nil }
func (d *memDisk) WriteAt(p []byte, s uint64) error { copy(d.data[s*512:], p); return nil }
func (d *memDisk) SectorSize() int                  { return 512 }
func (d *memDisk) Sectors() uint64                  { return uint64(len(d.data) / 512) }
func (d *memDisk) Flush() error                     { return nil }

// realManager is the manager domain's logic on swtpm, reached through
// its dispatcher as this vTPM (uuid) and as dom0.
func realManager(t *testing.T, uuid [16]byte) (vtpm func([]byte) ([]byte, error), dom0 mgmt.Client) {
	t.Helper()
	sw := swtpmtest.Start(t)
	(gt.Startup{StartupType: gt.TPMSUClear}).Execute(sw)
	hw, err := hwtpm.Open(sw, hwtpm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.Open(&memDisk{make([]byte, 16<<20)}, hw, manager.Config{Admins: []uint32{0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.SaveHashKey(uuid, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	h := &proto.Handler{Backend: m}
	vtpm = func(req []byte) ([]byte, error) {
		return proto.ParseResponse(h.Handle(req, proto.PeerInfo{DomID: 5, UUID: uuid}), proto.TagVTPMReq)
	}
	return vtpm, mgmt.Client{T: dom0Peer{h}}
}

type dom0Peer struct{ h *proto.Handler }

func (p dom0Peer) Send(cmd []byte) ([]byte, error) {
	return p.h.Handle(cmd, proto.PeerInfo{DomID: 0, UUID: [16]byte{0xd0}}), nil
}

// A guest's deep quote through the server and the real manager: it binds
// the guest's nonce, this vTPM's UUID and the PCR values the guest reads.
func TestDeepQuoteFromGuest(t *testing.T) {
	uuid := [16]byte{1, 2, 3}
	ask, dom0 := realManager(t, uuid)
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
	ak, err := dom0.GroupAK(0)
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
