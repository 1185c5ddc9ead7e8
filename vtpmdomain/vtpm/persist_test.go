package vtpm

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// memSaver is the test double of the domain's state store.
type memSaver struct {
	blobs [][]byte
	fail  error
}

func (m *memSaver) Save(b []byte) error {
	if m.fail != nil {
		return m.fail
	}
	m.blobs = append(m.blobs, append([]byte(nil), b...))
	return nil
}

func (m *memSaver) last() []byte { return m.blobs[len(m.blobs)-1] }

const nvIndex = tpm2.TPMHandle(0x01500016)

func defineNV(t *testing.T, s *Server) {
	t.Helper()
	_, err := tpm2.NVDefineSpace{
		AuthHandle: tpm2.TPMRHOwner,
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
			NVIndex: nvIndex, NameAlg: tpm2.TPMAlgSHA256,
			Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, AuthRead: true, AuthWrite: true, NT: tpm2.TPMNTOrdinary},
			DataSize:   8,
		}),
	}.Execute(serverTransport{s})
	if err != nil {
		t.Fatalf("NV_DefineSpace: %v", err)
	}
}

func nvExists(s *Server) bool {
	_, err := tpm2.NVReadPublic{NVIndex: nvIndex}.Execute(serverTransport{s})
	return err == nil
}

func TestServerSavesChangesBeforeAnswering(t *testing.T) {
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sv.blobs) != 1 {
		t.Fatalf("a new TPM was saved %d times at start, want 1", len(sv.blobs))
	}
	if _, err := (tpm2.GetRandom{BytesRequested: 8}).Execute(serverTransport{s}); err != nil {
		t.Fatal(err)
	}
	if _, err := (tpm2.PCRExtend{PCRHandle: tpm2.AuthHandle{Handle: 16, Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: make([]byte, 32)}}}}).Execute(serverTransport{s}); err != nil {
		t.Fatal(err)
	}
	if len(sv.blobs) != 1 {
		t.Fatalf("GetRandom/PCR_Extend caused %d saves", len(sv.blobs)-1)
	}
	defineNV(t, s)
	if len(sv.blobs) != 2 {
		t.Fatalf("NV_DefineSpace: %d saves, want 1", len(sv.blobs)-1)
	}
	if st := s.Stats(); st.Saves != 2 || st.StateBytes != len(sv.last()) {
		t.Errorf("stats %+v", st)
	}

	// Resumed from the blob: the NV index is there, PCR 16 is reset.
	r, err := NewServer(Config{Options: Options{Startup: StartupClear}, State: sv.last(), Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if !nvExists(r) {
		t.Fatal("NV index lost across a restart")
	}
	pcr, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(16)}}}}.Execute(serverTransport{r})
	if err != nil || !bytes.Equal(pcr.PCRValues.Digests[0].Buffer, make([]byte, 32)) {
		t.Fatalf("PCR 16 after restart = %x, %v; want zeros", pcr.PCRValues.Digests[0].Buffer, err)
	}
}

func rcOf(rsp []byte) uint32 { return binary.BigEndian.Uint32(rsp[6:]) }

func TestServerSaveFailure(t *testing.T) {
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	sv.fail = errors.New("disk gone")
	_, err = tpm2.NVDefineSpace{
		AuthHandle: tpm2.TPMRHOwner,
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: nvIndex, NameAlg: tpm2.TPMAlgSHA256,
			Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, NT: tpm2.TPMNTOrdinary}, DataSize: 8}),
	}.Execute(serverTransport{s})
	var terr tpm2.TPMRC
	if !errors.As(err, &terr) || uint32(terr) != rcNVUnavailable {
		t.Fatalf("NV_DefineSpace with a failing saver: %v, want TPM_RC_NV_UNAVAILABLE", err)
	}
	// The failed command had no effect; reads and volatile commands go on.
	if nvExists(s) {
		t.Fatal("the NV index whose save failed exists in the running TPM")
	}
	getRandom := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}
	if rc := rcOf(s.Handle(Peer{Name: "t"}, 0, getRandom)); rc != 0 {
		t.Fatalf("GetRandom after a failed save: rc %#x", rc)
	}
	// Once the saver works again the command can simply be retried.
	sv.fail = nil
	defineNV(t, s)
	r, err := NewServer(Config{Options: Options{Startup: StartupClear}, State: sv.last(), Log: nopLog{}})
	if err != nil || !nvExists(r) {
		t.Fatalf("state saved by the retried command lacks the NV index (%v)", err)
	}
	if st := s.Stats(); st.SaveErrors != 1 || st.Saves != 2 {
		t.Errorf("stats %+v, want 1 save error and 2 saves", st)
	}
	// A new TPM that cannot be saved does not start.
	if _, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: &memSaver{fail: errors.New("x")}, Log: nopLog{}}); err == nil {
		t.Fatal("a new TPM started although its state could not be saved")
	}
}

func TestServerHWInitPCR(t *testing.T) {
	hw := func(i int) ([20]byte, error) { return sha1.Sum([]byte{byte(i)}), nil }
	s, err := NewServer(Config{Options: Options{Startup: StartupClear, HWInitPCR: []int{0, 7}}, HWPCR: hw, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	v7, _ := hw(7)
	want := sha256.Sum256(append(make([]byte, 32), v7[:]...))
	pcr, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(7)}}}}.Execute(serverTransport{s})
	if err != nil || !bytes.Equal(pcr.PCRValues.Digests[0].Buffer, want[:]) {
		t.Fatalf("PCR 7 = %x, %v; want %x", pcr.PCRValues.Digests[0].Buffer, err, want)
	}
	if _, err := NewServer(Config{Options: Options{Startup: StartupClear, HWInitPCR: []int{0}}, Log: nopLog{}}); err == nil {
		t.Fatal("hwinitpcr without a manager started")
	}
	bad := func(int) ([20]byte, error) { return [20]byte{}, errors.New("manager says no") }
	if _, err := NewServer(Config{Options: Options{Startup: StartupClear, HWInitPCR: []int{0}}, HWPCR: bad, Log: nopLog{}}); err == nil {
		t.Fatal("hwinitpcr with a failing PCR read started")
	}
}

func TestClearGiven(t *testing.T) {
	v, _ := Spec().Parse("clear")
	if o, _ := ParseOptions(v); !o.ClearGiven || o.Startup != StartupClear {
		t.Fatalf("clear: %+v", o)
	}
	v, _ = Spec().Parse("")
	if o, _ := ParseOptions(v); o.ClearGiven {
		t.Fatalf("default: %+v", o)
	}
}

func TestServerClose(t *testing.T) {
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	defineNV(t, s)
	// The third save is Close's, as the TPM stops.
	if st, unsaved := s.Close(); unsaved || st.Saves != 3 || st.Commands != 1 {
		t.Fatalf("Close = %+v, unsaved %v; want 3 saves, 1 command, nothing unsaved", st, unsaved)
	}
	done := make(chan struct{})
	go func() {
		s.Handle(Peer{Name: "late"}, 0, []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8})
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a command ran after Close")
	case <-time.After(50 * time.Millisecond):
	}
	f := &memSaver{}
	u, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: f, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	f.fail = errors.New("disk gone")
	_, _ = tpm2.NVDefineSpace{AuthHandle: tpm2.TPMRHOwner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: nvIndex, NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, NT: tpm2.TPMNTOrdinary}, DataSize: 8})}.Execute(serverTransport{u})
	if _, unsaved := u.Close(); unsaved {
		t.Fatal("Close reports an unsaved change although the failed one was undone")
	}
}
