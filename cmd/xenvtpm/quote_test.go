package main

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/internal/mgrtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// groupAKAndVerifyQuote runs dom0's `group ak` against the real manager
// m (its output must contain proof), takes a vTPM's deep quote from m
// (its hardware family must be family) and has `verify quote` check it
// with the AK `group ak` wrote: it verifies, and a wrong nonce is named.
func groupAKAndVerifyQuote(t *testing.T, m *mgrtest.Manager, proof string, family uint8) {
	t.Helper()
	old := connectManager
	t.Cleanup(func() { connectManager = old })
	connectManager = func(context.Context, string) (managerClient, func() error, error) {
		return m.Dom0(), func() error { return nil }, nil
	}
	dir := t.TempDir()
	akFile := filepath.Join(dir, "ak.pem")
	out, err := captureStdout(t, func() error { return runGroup([]string{"ak", "0", "-o", akFile}) })
	if err != nil || !strings.Contains(out, proof) {
		t.Fatalf("group ak: %q, %v", out, err)
	}

	vtpm := [16]byte{7, 7}
	m.AddVTPM(t, vtpm)
	vals := [][]byte{make([]byte, 32)}
	nonce := []byte{1, 2, 3, 4}
	req, _ := proto.EncodeDeepQuote(proto.DeepQuote{Nonce: nonce, PCRs: 1 << 16, PCRDigest: deepquote.PCRDigest(vals)})
	p, err := m.Ask(req, proto.PeerInfo{DomID: 4, UUID: vtpm})
	if err != nil {
		t.Fatal(err)
	}
	a, err := deepquote.ParseAnswer(p)
	if err != nil || a.HWFamily != family {
		t.Fatalf("answer: %v", err)
	}
	enc, _ := (&deepquote.Bundle{Answer: *a, VTPMPCRValues: vals}).Marshal()
	qFile := filepath.Join(dir, "quote.bin")
	os.WriteFile(qFile, enc, 0o644)

	args := []string{"quote", qFile, "--ak", akFile, "--nonce", hex.EncodeToString(nonce), "--uuid", mgmt.FormatUUID(vtpm),
		"--vtpm-pcr", "16:" + hex.EncodeToString(vals[0])}
	if out, err := captureStdout(t, func() error { return runVerify(args) }); err != nil || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("verify quote: %q, %v", out, err)
	}
	bad := append([]string(nil), args...)
	bad[5] = "ff"
	if _, err := captureStdout(t, func() error { return runVerify(bad) }); err == nil || !strings.Contains(err.Error(), "NOT VERIFIED: nonce") {
		t.Fatalf("another nonce: %v", err)
	}
}

// dom0's `group ak` proves the key against the real manager on swtpm,
// and `verify quote` takes a quote from it and names a wrong nonce.
func TestGroupAKAndVerifyQuote(t *testing.T) {
	groupAKAndVerifyQuote(t, mgrtest.Start(t), "proven resident", deepquote.HW20)
}

// The same on TPM 1.2 hardware: `group ak` proves the group's identity
// key with TPM_ActivateIdentity, and `verify quote` checks a TPM_Quote
// deep quote with it.
func TestGroupAKAndVerifyQuote12(t *testing.T) {
	groupAKAndVerifyQuote(t, mgrtest.Start12(t, "owner", "srk"), "TPM_ActivateIdentity", deepquote.HW12)
}
