package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

var (
	keyOnce sync.Once
	ecKey   crypto.Signer
)

func mustKey(t testing.TB) crypto.Signer {
	keyOnce.Do(func() {
		var err error
		if ecKey, err = saa.GenerateKey("ecdsa"); err != nil {
			panic(err)
		}
	})
	return ecKey
}

// fakeClient is the manager as the commands see it, recording calls.
type fakeClient struct {
	groups  map[uint32]*mgmt.GroupInfo
	vtpms   map[uint32][][16]byte
	updated []byte
	calls   []string
	err     error
}

func (f *fakeClient) rec(s string) error { f.calls = append(f.calls, s); return f.err }

func (f *fakeClient) GroupList() ([]uint32, error) {
	var ids []uint32
	for id := range f.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, f.rec("list")
}
func (f *fakeClient) GroupNew(k saa.PublicKey) ([16]byte, uint32, error) {
	return [16]byte{0xAB, 0xCD}, 3, f.rec("new " + k.Alg())
}
func (f *fakeClient) GroupDel(id uint32) error { return f.rec("del") }
func (f *fakeClient) GroupUpdate(id uint32, b []byte) error {
	f.updated = b
	return f.rec("update")
}
func (f *fakeClient) GroupShow(id uint32) (*mgmt.GroupInfo, error) {
	g, ok := f.groups[id]
	if !ok {
		return nil, &mgmt.Error{Ordinal: 0x02000107, Code: mgmt.CodeBadIndex}
	}
	return g, f.rec("show")
}
func (f *fakeClient) VTPMList(g uint32) ([][16]byte, error) { return f.vtpms[g], f.rec("vtpm list") }
func (f *fakeClient) VTPMNew(g uint32, u *[16]byte) ([16]byte, error) {
	if u != nil {
		return *u, f.rec("vtpm new uuid")
	}
	return [16]byte{1}, f.rec("vtpm new")
}
func (f *fakeClient) VTPMDel([16]byte) error { return f.rec("vtpm del") }
func (f *fakeClient) GroupAK(uint32) (*mgmt.GroupAK, error) {
	return nil, &mgmt.Error{Ordinal: 0x02000112, Code: 2}
}
func (f *fakeClient) GroupActivate(uint32, []byte, []byte) ([]byte, error) {
	return nil, &mgmt.Error{Ordinal: 0x02000104, Code: 2}
}
func (f *fakeClient) GroupCACert(id uint32) (*x509.Certificate, error) {
	if _, ok := f.groups[id]; !ok {
		return nil, &mgmt.Error{Ordinal: 0x02000111, Code: mgmt.CodeBadIndex}
	}
	_, c, err := ekcert.NewCA("fake group CA", "ecdsa")
	if err != nil {
		return nil, err
	}
	return c, f.rec("ca-cert")
}

// group ca-cert prints the CA as PEM or writes it to a file.
func TestGroupCACert(t *testing.T) {
	f := &fakeClient{groups: map[uint32]*mgmt.GroupInfo{0: {}}}
	useFake(t, f, "vtpmmgr")
	out, err := captureStdout(t, func() error { return runGroup([]string{"ca-cert", "0"}) })
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(out))
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("output is not a PEM certificate: %q", out)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if out, err = captureStdout(t, func() error { return runGroup([]string{"ca-cert", "0", "-o", file}) }); err != nil || !strings.Contains(out, "written to") {
		t.Fatalf("%q, %v", out, err)
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.HasPrefix(b, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("%s: %v", file, err)
	}
	if _, err := captureStdout(t, func() error { return runGroup([]string{"ca-cert", "7"}) }); err == nil {
		t.Fatal("the CA of a missing group was printed")
	}
}

// useFake makes the commands talk to f, checking the manager named.
func useFake(t *testing.T, f *fakeClient, wantManager string) {
	old := connectManager
	t.Cleanup(func() { connectManager = old })
	connectManager = func(_ context.Context, d string) (managerClient, func() error, error) {
		if d != wantManager {
			t.Errorf("attached to %q, want %q", d, wantManager)
		}
		return f, func() error { return nil }, nil
	}
}

func testGroup(t *testing.T) (*mgmt.GroupInfo, saa.PublicKey) {
	k, err := saa.NewPublicKey(mustKey(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	return &mgmt.GroupInfo{UUID: [16]byte{0x11, 0x22}, Key: k, Seq: 4, NextSeq: 5, Family: saa.Family20,
		Approvals: []mgmt.ShownApproval{{PCRs: []uint{0, 2, 4}, Digest: []byte{0xde, 0xad}}},
		VTPMs:     2, Flags: mgmt.FlagSealed | mgmt.FlagPCRsMatch}, k
}

func TestGroupShowOutput(t *testing.T) {
	g, k := testGroup(t)
	text := showGroupText(0, g)
	for _, want := range []string{
		"group 0\n", "uuid        11220000-0000-0000-0000-000000000000",
		"saa key     ecdsa (fingerprint " + k.Fingerprint() + ")",
		"sequence 4, TPM 2.0, 1 approvals; the next list must carry 5 or above",
		"approval 0  PCRs 0,2,4 digest dead", "vtpms       2", "auto-create no", "sealed      yes", "pcrs match  yes",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	empty := &mgmt.GroupInfo{NextSeq: 1, Flags: mgmt.FlagAutoCreate}
	if text := showGroupText(1, empty); !strings.Contains(text, "saa key     none") || !strings.Contains(text, "none installed; the first list may carry sequence 1") {
		t.Errorf("empty group:\n%s", text)
	}
	jb, _ := json.Marshal(showGroupJSON(0, g))
	var m map[string]any
	json.Unmarshal(jb, &m)
	for k, v := range map[string]any{"group": 0.0, "uuid": "11220000-0000-0000-0000-000000000000", "seq": 4.0, "next_seq": 5.0,
		"family": "2.0", "vtpms": 2.0, "auto_create": false, "sealed": true, "pcrs_match": true} {
		if m[k] != v {
			t.Errorf("JSON %q = %v, want %v (%s)", k, m[k], v, jb)
		}
	}
	if key := m["key"].(map[string]any); key["alg"] != "ecdsa" || key["fingerprint"] != k.Fingerprint() {
		t.Errorf("JSON key %v", key)
	}
	if a := m["approvals"].([]any)[0].(map[string]any); a["digest"] != "dead" {
		t.Errorf("JSON approval %v", a)
	}
	jb, _ = json.Marshal(showGroupJSON(1, empty))
	if !strings.Contains(string(jb), `"key":null`) || !strings.Contains(string(jb), `"approvals":[]`) || !strings.Contains(string(jb), `"family":""`) {
		t.Errorf("empty group JSON %s", jb)
	}
}

func TestGroupCommands(t *testing.T) {
	g, k := testGroup(t)
	f := &fakeClient{groups: map[uint32]*mgmt.GroupInfo{0: g, 2: {NextSeq: 1}}, vtpms: map[uint32][][16]byte{0: {{1}, {2}}, 2: {{3}}}}
	useFake(t, f, "mgr")
	dir := t.TempDir()
	pem, _ := saa.MarshalPublicPEM(k)
	pub := writeFile(t, dir, "saa.pub", string(pem))

	out, err := captureStdout(t, func() error { return runGroup([]string{"add", "--manager", "mgr", "--key", pub, "--json"}) })
	var added struct {
		Group uint32
		UUID  string
		Key   struct{ Alg string }
	}
	if err != nil || json.Unmarshal([]byte(out), &added) != nil || added.Group != 3 || added.UUID != "abcd0000-0000-0000-0000-000000000000" || added.Key.Alg != "ecdsa" {
		t.Fatalf("group add: %v %s", err, out)
	}
	if out, err := captureStdout(t, func() error { return runGroup([]string{"list", "--manager", "mgr"}) }); err != nil || out != "0\n2\n" {
		t.Fatalf("group list: %v %q", err, out)
	}
	if out, err := captureStdout(t, func() error { return runGroup([]string{"show", "0", "--manager", "mgr"}) }); err != nil || !strings.Contains(out, "sequence 4") {
		t.Fatalf("group show: %v %q", err, out)
	}
	if _, err := captureStdout(t, func() error { return runGroup([]string{"show", "9", "--manager", "mgr"}) }); err == nil || !strings.Contains(err.Error(), "no such group") {
		t.Fatalf("group show 9: %v", err)
	}
	if out, err := captureStdout(t, func() error { return runVTPM([]string{"list", "--manager=mgr"}) }); err != nil ||
		out != "0 01000000-0000-0000-0000-000000000000\n0 02000000-0000-0000-0000-000000000000\n2 03000000-0000-0000-0000-000000000000\n" {
		t.Fatalf("vtpm list: %v %q", err, out)
	}
	if out, err := captureStdout(t, func() error { return runVTPM([]string{"list", "2", "--json", "--manager=mgr"}) }); err != nil ||
		!strings.Contains(out, `"group": 2`) || strings.Contains(out, `"group": 0`) {
		t.Fatalf("vtpm list 2: %v %q", err, out)
	}
	if out, err := captureStdout(t, func() error {
		return runVTPM([]string{"add", "0", "--uuid", "01234567-89ab-cdef-0123-456789abcdef", "--manager", "mgr"})
	}); err != nil || out != "01234567-89ab-cdef-0123-456789abcdef\n" {
		t.Fatalf("vtpm add: %v %q", err, out)
	}
	if _, err := captureStdout(t, func() error { return runVTPM([]string{"del", "not-a-uuid", "--manager", "mgr"}) }); err == nil {
		t.Fatal("vtpm del with a bad UUID succeeded")
	}
	if _, err := captureStdout(t, func() error { return runGroup([]string{"del", "x"}) }); err == nil {
		t.Fatal("group del x succeeded")
	}
	if err := runGroup([]string{"frob"}); err == nil {
		t.Fatal("unknown subcommand accepted")
	}

	// update: a good list goes through; the list's bytes reach the
	// manager unchanged.
	b, err := saa.SignList(saa.ConfigList{Family: saa.Family20, Group: g.UUID, Seq: 5,
		Approvals: []saa.Approval{{PCRs: []uint{0}, Digest: make([]byte, 32)}}}, mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "s.cfg")
	os.WriteFile(cfg, b, 0o644)
	if out, err := captureStdout(t, func() error { return runGroup([]string{"update", "0", cfg, "--manager", "mgr"}) }); err != nil ||
		!strings.Contains(out, "installed list sequence 5") || string(f.updated) != string(b) {
		t.Fatalf("group update: %v %q", err, out)
	}
}

// TestCheckListFor: group update refuses, before asking the manager, a
// list for another group, by another key, older, or for the other TPM
// family.
func TestCheckListFor(t *testing.T) {
	g, _ := testGroup(t)
	other, _ := saa.GenerateKey("ecdsa")
	mk := func(edit func(*saa.ConfigList), s crypto.Signer) *saa.Signed {
		l := saa.ConfigList{Family: saa.Family20, Group: g.UUID, Seq: 5, Approvals: []saa.Approval{{PCRs: []uint{0}, Digest: make([]byte, 32)}}}
		if edit != nil {
			edit(&l)
		}
		b, err := saa.SignList(l, s)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := saa.ParseList(b)
		return p
	}
	if err := checkListFor(mk(nil, mustKey(t)), 0, g); err != nil {
		t.Fatalf("good list: %v", err)
	}
	for name, c := range map[string]struct {
		s    *saa.Signed
		want string
	}{
		"other group":  {mk(func(l *saa.ConfigList) { l.Group[0] ^= 1 }, mustKey(t)), "is for group UUID"},
		"other key":    {mk(nil, other), "not signed by group 0's SAA key"},
		"older":        {mk(func(l *saa.ConfigList) { l.Seq = 4 }, mustKey(t)), "below 5"},
		"other family": {mk(func(l *saa.ConfigList) { l.Family = saa.Family12; l.Approvals[0].Digest = make([]byte, 20) }, mustKey(t)), "for TPM 1.2"},
	} {
		if err := checkListFor(c.s, 0, g); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
