package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2"

	emu12 "github.com/xenvtpm/xenvtpm/emulator/tpm12"
	emu2 "github.com/xenvtpm/xenvtpm/emulator/tpm2"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// captureStdout runs f with stdout in a buffer.
func captureStdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	var b bytes.Buffer
	old := stdout
	stdout = &b
	defer func() { stdout = old }()
	err := f()
	return b.String(), err
}

func TestParsePCRList(t *testing.T) {
	for in, want := range map[string][]uint{
		"0": {0}, "0,2,4": {0, 2, 4}, "4,2,0": {0, 2, 4}, "0-3,7": {0, 1, 2, 3, 7}, "23": {23}, " 1 , 2": {1, 2},
	} {
		if got, err := parsePCRList(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("parsePCRList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "24", "0-24", "3-1", "1,1", "0-2,2", "a", "-1", "1,"} {
		if got, err := parsePCRList(in); err == nil {
			t.Errorf("parsePCRList(%q) = %v", in, got)
		}
	}
}

func TestParseValues(t *testing.T) {
	a := strings.Repeat("ab", 32)
	in := "# PCRs of the new boot\n\n0 " + a + "\n 7: 0x" + strings.ToUpper(a) + "  # from tpm2_pcrread\n"
	v, err := parseValues(strings.NewReader(in), 32)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(a)
	if len(v) != 2 || !bytes.Equal(v[0], want) || !bytes.Equal(v[7], want) {
		t.Fatalf("values %x", v)
	}
	// tpm2_pcrread's output for one bank.
	pr := "  sha256:\n    0 : 0x" + strings.ToUpper(a) + "\n    1 : 0x" + a + "\n"
	if v, err := parseValues(strings.NewReader(pr), 32); err != nil || len(v) != 2 || !bytes.Equal(v[1], want) {
		t.Fatalf("tpm2_pcrread output: %x, %v", v, err)
	}
	for name, c := range map[string]struct{ in, want string }{
		"two banks": {"sha1:\n0 : 0x" + strings.Repeat("00", 20) + "\nsha256:\n0 : 0x" + a, "20 bytes"},
		"short":     {"0 " + a[:62], "31 bytes, want 32"},
		"SHA-1":     {"0 " + strings.Repeat("00", 20), "20 bytes"},
		"twice":     {"0 " + a + "\n0 " + a, "given twice"},
		"PCR 24":    {"24 " + a, "PCR number"},
		"not hex":   {"0 " + strings.Repeat("zz", 32), "PCR 0 value"},
		"3 fields":  {"0 " + a + " x", "line 1"},
		"no number": {"x " + a, "PCR number"},
	} {
		if _, err := parseValues(strings.NewReader(c.in), 32); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestParseSignConfig(t *testing.T) {
	base := []string{"--key", "k", "--group-uuid", "u", "--seq", "3", "--family", "2.0", "--out", "o"}
	c, err := parseSignConfig(append(slices.Clone(base), "--pcrs", "0,2", "--values", "v1", "--pcrs", "4", "--tpm", "/dev/tpmrm0", "--also", "old.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.specs) != 2 || !slices.Equal(c.specs[0].pcrs, []uint{0, 2}) || c.specs[0].values != "v1" ||
		!slices.Equal(c.specs[1].pcrs, []uint{4}) || c.specs[1].tpm != "/dev/tpmrm0" || c.seq != 3 || !slices.Equal(c.also, []string{"old.cfg"}) {
		t.Fatalf("parsed %+v", c)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"values first": {append(slices.Clone(base), "--values", "v", "--pcrs", "0"), "must follow a --pcrs"},
		"no values":    {append(slices.Clone(base), "--pcrs", "0", "--pcrs", "1", "--values", "v"), "--pcrs 0 (approval 0) has no --values"},
		"values twice": {append(slices.Clone(base), "--pcrs", "0", "--values", "v", "--tpm", "t"), "already has its values"},
		"no approvals": {base, "no approvals"},
		"no key":       {append(slices.Clone(base[2:]), "--pcrs", "0", "--values", "v"), "--key is required"},
		"seq 0":        {append([]string{"--seq", "0"}, append(slices.Clone(base[:4]), append(base[6:], "--pcrs", "0", "--values", "v")...)...), "--seq is required"},
		"bad pcrs":     {append(slices.Clone(base), "--pcrs", "0,99", "--values", "v"), "out of range"},
		"positional":   {append(slices.Clone(base), "--pcrs", "0", "--values", "v", "extra"), "unexpected argument"},
	} {
		if _, err := parseSignConfig(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	var m mgmtFlags
	fs := newSub("group show", &m)
	pos, err := parseInterspersed(fs, []string{"3", "--json", "--manager", "7", "--", "--x"})
	if err != nil || !slices.Equal(pos, []string{"3", "--x"}) || !m.json || m.manager != "7" {
		t.Fatalf("pos %v, flags %+v, %v", pos, m, err)
	}
}

// keygen makes an SAA key pair in dir with the command.
func keygen(t *testing.T, dir, name, alg string) (priv, pub string) {
	t.Helper()
	prefix := filepath.Join(dir, name)
	out, err := captureStdout(t, func() error { return saaKeygen([]string{"--alg", alg, "--out", prefix}) })
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	if !strings.Contains(out, "SAA key "+alg+":") {
		t.Fatalf("keygen printed %q", out)
	}
	st, err := os.Stat(prefix + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", st, err)
	}
	return prefix + ".key", prefix + ".pub"
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignConfig: sign-config's list parses and verifies with the
// public key file, and its digests are those of the values given.
func TestSignConfig(t *testing.T) {
	dir := t.TempDir()
	const uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	for _, alg := range []string{"rsa", "ecdsa"} {
		priv, pub := keygen(t, dir, alg, alg)
		if err := saaKeygen([]string{"--out", filepath.Join(dir, alg)}); err == nil {
			t.Fatal("keygen replaced an existing key")
		}
		for _, fam := range []string{"1.2", "2.0"} {
			size := 20
			if fam == "2.0" {
				size = 32
			}
			vals := map[uint][]byte{}
			var text strings.Builder
			for _, p := range []uint{0, 2, 4, 5} {
				v := bytes.Repeat([]byte{byte(p + 1)}, size)
				vals[p] = v
				fmt.Fprintf(&text, "%d %x\n", p, v)
			}
			vf := writeFile(t, dir, "values", text.String())
			out := filepath.Join(dir, alg+fam+".cfg")
			_, err := captureStdout(t, func() error {
				return saaSignConfig([]string{"--key", priv, "--group-uuid", uuid, "--seq", "9", "--family", fam,
					"--pcrs", "0,2,4", "--values", vf, "--pcrs", "4-5", "--values", vf, "--out", out})
			})
			if err != nil {
				t.Fatalf("%s %s: sign-config: %v", alg, fam, err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			s, err := saa.ParseList(b)
			if err != nil {
				t.Fatal(err)
			}
			k, err := readPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(k); err != nil {
				t.Fatalf("%s %s: %v", alg, fam, err)
			}
			l := s.List
			if l.Seq != 9 || l.Family.String() != fam || hex.EncodeToString(l.Group[:]) != strings.ReplaceAll(uuid, "-", "") || len(l.Approvals) != 2 {
				t.Fatalf("list %+v", l)
			}
			// The digests, computed here by hand.
			for i, pcrs := range [][]uint{{0, 2, 4}, {4, 5}} {
				var want []byte
				if fam == "2.0" {
					h := sha256.New()
					for _, p := range pcrs {
						h.Write(vals[p])
					}
					want = h.Sum(nil)
				} else {
					var sel [3]byte
					for _, p := range pcrs {
						sel[p/8] |= 1 << (p % 8)
					}
					c := append([]byte{0, 3}, sel[:]...)
					c = binary.BigEndian.AppendUint32(c, uint32(20*len(pcrs)))
					for _, p := range pcrs {
						c = append(c, vals[p]...)
					}
					h := sha1.Sum(c)
					want = h[:]
				}
				if !slices.Equal(l.Approvals[i].PCRs, pcrs) || !bytes.Equal(l.Approvals[i].Digest, want) {
					t.Fatalf("%s %s approval %d: %v %x, want %v %x", alg, fam, i, l.Approvals[i].PCRs, l.Approvals[i].Digest, pcrs, want)
				}
			}
			// show-config verifies with the key and prints the approvals.
			text2, err := captureStdout(t, func() error { return saaShowConfig([]string{out, "--key", pub}) })
			if err != nil || !strings.Contains(text2, "approval 1  PCRs 4,5 digest") || !strings.Contains(text2, "verified with "+alg) {
				t.Fatalf("show-config: %v\n%s", err, text2)
			}
		}
	}
	// A wrong key is refused by show-config.
	_, otherPub := keygen(t, dir, "other", "ecdsa")
	if _, err := captureStdout(t, func() error {
		return saaShowConfig([]string{filepath.Join(dir, "ecdsa2.0.cfg"), "--key", otherPub})
	}); err == nil || !strings.Contains(err.Error(), "not signed by") {
		t.Fatalf("show-config with another key: %v", err)
	}
}

// TestSignConfigAlso: --also carries a previous list's approvals into
// the new one, once each; a list signed by another key is refused.
func TestSignConfigAlso(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "saa", "ecdsa")
	otherPriv, _ := keygen(t, dir, "other", "ecdsa")
	const uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	vf := writeFile(t, dir, "v", fmt.Sprintf("0 %x\n1 %x\n", bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)))
	sign := func(key, out string, seq int, extra ...string) error {
		_, err := captureStdout(t, func() error {
			return saaSignConfig(append([]string{"--key", key, "--group-uuid", uuid, "--seq", fmt.Sprint(seq), "--family", "2.0", "--out", filepath.Join(dir, out)}, extra...))
		})
		return err
	}
	if err := sign(priv, "old.cfg", 1, "--pcrs", "0", "--values", vf); err != nil {
		t.Fatal(err)
	}
	if err := sign(priv, "new.cfg", 2, "--also", filepath.Join(dir, "old.cfg"), "--pcrs", "0", "--values", vf, "--pcrs", "0,1", "--values", vf); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "new.cfg"))
	s, err := saa.ParseList(b)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := readPublicKey(pub)
	if err := s.Verify(k); err != nil || len(s.List.Approvals) != 2 || s.List.Seq != 2 {
		t.Fatalf("new list: %v, %d approvals", err, len(s.List.Approvals))
	}
	if err := sign(otherPriv, "x.cfg", 3, "--also", filepath.Join(dir, "old.cfg")); err == nil || !strings.Contains(err.Error(), "not signed by this key") {
		t.Fatalf("--also with another key's list: %v", err)
	}
}

// engineTransport is the project's TPM 2.0 engine as a go-tpm transport.
type engineTransport struct{ t *emu2.TPM }

func (e engineTransport) Send(cmd []byte) ([]byte, error) { return e.t.Process(cmd, 0), nil }

// TestReadPCRs20: --tpm's reading gives the engine's SHA-256 PCRs,
// across the TPM's answers of part of a selection.
func TestReadPCRs20(t *testing.T) {
	eng, err := emu2.New(emu2.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{eng}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("kernel"))
	if _, err := (tpm2.PCRExtend{PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(4), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	pcrs := []uint{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16}
	vals, err := readPCRs20(tr, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	want4 := sha256.Sum256(append(make([]byte, 32), d[:]...))
	if len(vals) != len(pcrs) || !bytes.Equal(vals[4], want4[:]) || !bytes.Equal(vals[0], make([]byte, 32)) {
		t.Fatalf("PCR values %x", vals)
	}
}

// rw12 is the TPM 1.2 engine as the io.ReadWriter go-tpm's legacy
// package talks to.
type rw12 struct {
	t   *emu12.TPM
	rsp []byte
}

func (r *rw12) Write(b []byte) (int, error) { r.rsp = r.t.Process(b, 0); return len(b), nil }
func (r *rw12) Read(b []byte) (int, error) {
	n := copy(b, r.rsp)
	r.rsp = r.rsp[n:]
	return n, nil
}

func TestReadPCRs12(t *testing.T) {
	eng, err := emu12.New(emu12.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rw := &rw12{t: eng}
	// TPM_Startup(ST_CLEAR).
	rw.Write([]byte{0, 0xC1, 0, 0, 0, 12, 0, 0, 0, 0x99, 0, 1})
	if rc := binary.BigEndian.Uint32(rw.rsp[6:]); rc != 0 {
		t.Fatalf("TPM_Startup: %#x", rc)
	}
	d := sha1.Sum([]byte("kernel"))
	if _, err := legacy.PcrExtend(rw, 4, d); err != nil {
		t.Fatal(err)
	}
	vals, err := readPCRs12(rw, []uint{0, 4})
	if err != nil {
		t.Fatal(err)
	}
	want := sha1.Sum(append(make([]byte, 20), d[:]...))
	if !bytes.Equal(vals[4], want[:]) || !bytes.Equal(vals[0], make([]byte, 20)) {
		t.Fatalf("PCR values %x", vals)
	}
	// The values make the approval of a TPM 1.2 list.
	a, err := approvalFrom(saa.Family12, []uint{0, 4}, vals)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := saa.Composite12([]uint{0, 4}, [][]byte{vals[0], vals[4]})
	if !bytes.Equal(a.Digest, c[:]) {
		t.Fatal("approval digest is not the composite")
	}
}

// TestListJSONFields: the JSON field names are part of the interface.
func TestListJSONFields(t *testing.T) {
	testKey := mustKey(t)
	b, err := saa.SignList(saa.ConfigList{Family: saa.Family12, Seq: 1, Approvals: []saa.Approval{{PCRs: []uint{0}, Digest: make([]byte, 20)}}}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := saa.ParseList(b)
	j, _ := describeList(s, saa.PublicKey{}, false)
	var m map[string]any
	jb, _ := json.Marshal(j)
	json.Unmarshal(jb, &m)
	for _, k := range []string{"family", "group_uuid", "seq", "approvals", "size", "verified", "key"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, jb)
		}
	}
	if m["family"] != "1.2" || m["key"] != nil || m["verified"] != false {
		t.Errorf("JSON %s", jb)
	}
}

// TestSignConfigExtend: --extend approves the values after an extend,
// H(old ‖ digest) as TPM2_PCR_Extend computes it; misplaced or malformed
// --extend is refused.
func TestSignConfigExtend(t *testing.T) {
	dir := t.TempDir()
	priv, _ := keygen(t, dir, "x", "ecdsa")
	vals := map[uint][]byte{0: bytes.Repeat([]byte{1}, 32), 16: make([]byte, 32)}
	vf := writeFile(t, dir, "values", fmt.Sprintf("0 %x\n16 %x\n", vals[0], vals[16]))
	digest := bytes.Repeat([]byte{0xab}, 32)
	out := filepath.Join(dir, "x.cfg")
	if _, err := captureStdout(t, func() error {
		return saaSignConfig([]string{"--key", priv, "--group-uuid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "--seq", "2", "--family", "2.0",
			"--pcrs", "0,16", "--values", vf, "--extend", fmt.Sprintf("16:%x", digest), "--out", out})
	}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	s, err := saa.ParseList(b)
	if err != nil {
		t.Fatal(err)
	}
	after := sha256.Sum256(append(slices.Clone(vals[16]), digest...))
	if want := saa.PCRDigest([][]byte{vals[0], after[:]}); !bytes.Equal(s.List.Approvals[0].Digest, want) {
		t.Fatalf("approval digest %x, want %x", s.List.Approvals[0].Digest, want)
	}
	for _, bad := range [][]string{
		{"--extend", "16:" + strings.Repeat("ab", 32)},                   // before any --pcrs
		{"--pcrs", "0,16", "--extend", "16:" + strings.Repeat("ab", 32)}, // before the values
		{"--pcrs", "0,16", "--values", vf, "--extend", "24:" + strings.Repeat("ab", 32)},
		{"--pcrs", "0,16", "--values", vf, "--extend", "16:abcd"},
	} {
		args := append([]string{"--key", priv, "--group-uuid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "--seq", "2", "--family", "2.0", "--out", out + "2"}, bad...)
		if _, err := parseSignConfig(args); err == nil {
			t.Errorf("sign-config %q accepted", bad)
		}
	}
	// A PCR outside the approval, and a SHA-1 digest for a 2.0 list.
	for _, ex := range []string{"7:" + strings.Repeat("ab", 32), "16:" + strings.Repeat("ab", 20)} {
		if _, err := captureStdout(t, func() error {
			return saaSignConfig([]string{"--key", priv, "--group-uuid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "--seq", "2", "--family", "2.0",
				"--pcrs", "0,16", "--values", vf, "--extend", ex, "--out", out + "3"})
		}); err == nil {
			t.Errorf("--extend %s accepted", ex)
		}
	}
}
