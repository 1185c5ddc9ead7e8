package vtpm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/ratelimit"
)

// A guest decides how often its vTPM saves, and every save costs the
// manager a commit and a share of a hardware NV write: only real changes
// are saved, and those are rationed.

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

// nvWrite writes data to nvIndex with owner authorization and returns
// the response code.
func nvWrite(s *Server, data []byte) uint32 {
	_, err := tpm2.NVWrite{AuthHandle: tpm2.TPMRHOwner,
		NVIndex: tpm2.NamedHandle{Handle: nvIndex, Name: nvIndexName(s)},
		Data:    tpm2.TPM2BMaxNVBuffer{Buffer: data}}.Execute(serverTransport{s})
	return rcOfErr(err)
}

func nvRead(t *testing.T, s *Server) []byte {
	t.Helper()
	r, err := tpm2.NVRead{AuthHandle: tpm2.TPMRHOwner, NVIndex: tpm2.NamedHandle{Handle: nvIndex, Name: nvIndexName(s)}, Size: 8}.Execute(serverTransport{s})
	if err != nil {
		t.Fatal(err)
	}
	return r.Data.Buffer
}

func nvIndexName(s *Server) tpm2.TPM2BName {
	r, err := tpm2.NVReadPublic{NVIndex: nvIndex}.Execute(serverTransport{s})
	if err != nil {
		return tpm2.TPM2BName{}
	}
	return r.NVName
}

func rcOfErr(err error) uint32 {
	var rc tpm2.TPMRC
	switch {
	case err == nil:
		return 0
	case errors.As(err, &rc):
		return uint32(rc)
	}
	return 0xFFFFFFFF
}

func TestSaveBudget(t *testing.T) {
	clk := newFakeClock()
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear, SaveBudget: 3, SaveRefill: ratelimit.Rate{N: 1, Per: time.Minute}},
		Saver: sv, Log: nopLog{}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defineNV(t, s) // 1 of 3
	for i := byte(1); i <= 2; i++ {
		if rc := nvWrite(s, bytes.Repeat([]byte{i}, 8)); rc != 0 {
			t.Fatalf("write %d within the budget: rc %#x", i, rc)
		}
	}
	saves := len(sv.blobs)
	if rc := nvWrite(s, bytes.Repeat([]byte{3}, 8)); rc != rcNVRate {
		t.Fatalf("write past the budget: rc %#x, want TPM_RC_NV_RATE", rc)
	}
	if got := nvRead(t, s); !bytes.Equal(got, bytes.Repeat([]byte{2}, 8)) || len(sv.blobs) != saves {
		t.Fatalf("the refused write had an effect: NV %x, %d saves more", got, len(sv.blobs)-saves)
	}
	// What needs no save goes on with the budget spent.
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"GetRandom", func() error { _, err := tpm2.GetRandom{BytesRequested: 8}.Execute(serverTransport{s}); return err }},
		{"Shutdown(CLEAR)", func() error {
			_, err := tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}.Execute(serverTransport{s})
			return err
		}},
		{"NV_Read", func() error { nvRead(t, s); return nil }},
	} {
		if err := c.run(); err != nil {
			t.Fatalf("%s with the budget spent: %v", c.name, err)
		}
	}
	// The budget refills: one save a minute.
	clk.t = clk.t.Add(time.Minute)
	if rc := nvWrite(s, bytes.Repeat([]byte{4}, 8)); rc != 0 {
		t.Fatalf("write after a minute: rc %#x", rc)
	}
	if rc := nvWrite(s, bytes.Repeat([]byte{5}, 8)); rc != rcNVRate {
		t.Fatalf("second write in that minute: rc %#x, want TPM_RC_NV_RATE", rc)
	}
	if st := s.Stats(); st.RateRefused != 2 {
		t.Fatalf("RateRefused = %d, want 2", st.RateRefused)
	}
}

// A guest looping commands that change nothing durable costs no save:
// Shutdown(CLEAR), a wrong password on a DA-exempt entity, rewriting an
// NV index with the data it holds.
func TestNoSaveWithoutAChange(t *testing.T) {
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	defineNV(t, s)
	if rc := nvWrite(s, []byte("12345678")); rc != 0 {
		t.Fatalf("NV write: rc %#x", rc)
	}
	saves := len(sv.blobs)
	for range 20 {
		if _, err := (tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}).Execute(serverTransport{s}); err != nil {
			t.Fatal(err)
		}
		// The owner hierarchy is DA-exempt.
		_, err := tpm2.NVWrite{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth([]byte("wrong"))},
			NVIndex: tpm2.NamedHandle{Handle: nvIndex, Name: nvIndexName(s)},
			Data:    tpm2.TPM2BMaxNVBuffer{Buffer: []byte("xxxxxxxx")}}.Execute(serverTransport{s})
		if !errors.Is(err, tpm2.TPMRCBadAuth) {
			t.Fatalf("wrong owner password: %v", err)
		}
		if rc := nvWrite(s, []byte("12345678")); rc != 0 {
			t.Fatalf("NV rewrite: rc %#x", rc)
		}
	}
	if n := len(sv.blobs) - saves; n != 0 {
		t.Fatalf("60 commands that change nothing durable caused %d saves", n)
	}
}

// busySaver answers, when busy, like a manager whose hardware TPM
// rate-limits it.
type busySaver struct {
	memSaver
	busy bool
}

func (b *busySaver) Save(blob []byte) error {
	if b.busy {
		return fmt.Errorf("SAVEHASHKEY: %w", &proto.Error{Code: proto.TPMRetry, Msg: "manager returned an error"})
	}
	return b.memSaver.Save(blob)
}

// The manager's "retry later" reaches the guest as TPM_RC_NV_RATE, the
// warning a TSS retries, with the change undone.
func TestManagerBusyIsNVRate(t *testing.T) {
	sv := &busySaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	sv.busy = true
	_, err = tpm2.NVDefineSpace{AuthHandle: tpm2.TPMRHOwner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: nvIndex, NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, NT: tpm2.TPMNTOrdinary}, DataSize: 8})}.Execute(serverTransport{s})
	if rcOfErr(err) != rcNVRate {
		t.Fatalf("NV_DefineSpace with the manager busy: %v, want TPM_RC_NV_RATE", err)
	}
	if nvExists(s) {
		t.Fatal("the refused NV_DefineSpace had an effect")
	}
}

// Close writes what the engine keeps lazily: DA failures after the last
// save are in the state the next start loads, counted once each.
func TestCloseWritesLazyState(t *testing.T) {
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpm2.NVDefineSpace{AuthHandle: tpm2.TPMRHOwner, Auth: tpm2.TPM2BAuth{Buffer: []byte("pw")},
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: nvIndex, NameAlg: tpm2.TPMAlgSHA256,
			Attributes: tpm2.TPMANV{AuthWrite: true, AuthRead: true, NT: tpm2.TPMNTOrdinary}, DataSize: 8})}.Execute(serverTransport{s})
	if err != nil {
		t.Fatal(err)
	}
	name := nvIndexName(s)
	for range 2 {
		_, err := tpm2.NVWrite{AuthHandle: tpm2.AuthHandle{Handle: nvIndex, Name: name, Auth: tpm2.PasswordAuth([]byte("bad"))},
			NVIndex: tpm2.NamedHandle{Handle: nvIndex, Name: name}, Data: tpm2.TPM2BMaxNVBuffer{Buffer: []byte("x")}}.Execute(serverTransport{s})
		if !errors.Is(err, tpm2.TPMRCAuthFail) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	s.Close()
	r, err := NewServer(Config{Options: Options{Startup: StartupClear}, State: sv.last(), Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(tpm2.TPMPTLockoutCounter), PropertyCount: 1}.Execute(serverTransport{r})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CapabilityData.Data.TPMProperties()
	if err != nil || len(p.TPMProperty) != 1 || p.TPMProperty[0].Value != 2 {
		t.Fatalf("failedTries after Close and restart: %+v %v, want 2", p, err)
	}
}

func TestSaveBudgetOptions(t *testing.T) {
	v, err := Spec().Parse("")
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(v)
	if err != nil || o.SaveBudget != DefaultSaveBudget || o.SaveRefill.String() != DefaultSaveRefill {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	v, _ = Spec().Parse("savebudget=0 saverefill=2/s")
	if o, err := ParseOptions(v); err != nil || o.SaveBudget != 0 || o.SaveRefill != (ratelimit.Rate{N: 2, Per: time.Second}) {
		t.Fatalf("savebudget=0 saverefill=2/s: %+v %v", o, err)
	}
	for _, bad := range []string{"savebudget=-1", "savebudget=x", "saverefill=5", "saverefill=1/d"} {
		if _, err := Spec().Parse(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
