package main

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
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

type peerSender struct {
	h    *proto.Handler
	peer proto.PeerInfo
}

func (p peerSender) Send(cmd []byte) ([]byte, error) { return p.h.Handle(cmd, p.peer), nil }

// dom0's `group ak` proves the key against the real manager on swtpm,
// and `verify quote` takes a quote from it and names a wrong nonce.
func TestGroupAKAndVerifyQuote(t *testing.T) {
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
	defer m.Close()
	h := &proto.Handler{Backend: m}
	old := connectManager
	t.Cleanup(func() { connectManager = old })
	connectManager = func(context.Context, string) (managerClient, func() error, error) {
		return mgmt.Client{T: peerSender{h, proto.PeerInfo{DomID: 0, UUID: [16]byte{0xd0}}}}, func() error { return nil }, nil
	}
	dir := t.TempDir()
	akFile := filepath.Join(dir, "ak.pem")
	out, err := captureStdout(t, func() error { return runGroup([]string{"ak", "0", "-o", akFile}) })
	if err != nil || !strings.Contains(out, "proven resident") {
		t.Fatalf("group ak: %q, %v", out, err)
	}

	vtpm := [16]byte{7, 7}
	if err := m.SaveHashKey(vtpm, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	vals := [][]byte{make([]byte, 32)}
	nonce := []byte{1, 2, 3, 4}
	req, _ := proto.EncodeDeepQuote(proto.DeepQuote{Nonce: nonce, PCRs: 1 << 16, PCRDigest: deepquote.PCRDigest(vals)})
	p, err := proto.ParseResponse(h.Handle(req, proto.PeerInfo{DomID: 4, UUID: vtpm}), proto.TagVTPMReq)
	if err != nil {
		t.Fatal(err)
	}
	a, err := deepquote.ParseAnswer(p)
	if err != nil {
		t.Fatal(err)
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

// The same on TPM 1.2 hardware: `group ak` proves the group's identity
// key with TPM_ActivateIdentity, and `verify quote` checks a TPM_Quote
// deep quote with it.
func TestGroupAKAndVerifyQuote12(t *testing.T) {
	sw := swtpmtest.Start12Owned(t, "owner", "srk")
	o, _ := hwtpm.ParseAuth("text:owner")
	k, _ := hwtpm.ParseAuth("text:srk")
	hw, err := hwtpm.Open12(sw, hwtpm.Config{OwnerAuth: o, SRKAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.Open(&memDisk{make([]byte, 16<<20)}, hw, manager.Config{Admins: []uint32{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := &proto.Handler{Backend: m}
	old := connectManager
	t.Cleanup(func() { connectManager = old })
	connectManager = func(context.Context, string) (managerClient, func() error, error) {
		return mgmt.Client{T: peerSender{h, proto.PeerInfo{DomID: 0, UUID: [16]byte{0xd0}}}}, func() error { return nil }, nil
	}
	dir := t.TempDir()
	akFile := filepath.Join(dir, "ak.pem")
	out, err := captureStdout(t, func() error { return runGroup([]string{"ak", "0", "-o", akFile}) })
	if err != nil || !strings.Contains(out, "TPM_ActivateIdentity") {
		t.Fatalf("group ak: %q, %v", out, err)
	}

	vtpm := [16]byte{7, 7}
	if err := m.SaveHashKey(vtpm, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	vals := [][]byte{make([]byte, 32)}
	nonce := []byte{1, 2, 3, 4}
	req, _ := proto.EncodeDeepQuote(proto.DeepQuote{Nonce: nonce, PCRs: 1 << 16, PCRDigest: deepquote.PCRDigest(vals)})
	p, err := proto.ParseResponse(h.Handle(req, proto.PeerInfo{DomID: 4, UUID: vtpm}), proto.TagVTPMReq)
	if err != nil {
		t.Fatal(err)
	}
	a, err := deepquote.ParseAnswer(p)
	if err != nil || a.HWFamily != deepquote.HW12 {
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
