package main

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// The saa command is the System Approval Agent's tool: it makes the SAA
// key and signs the lists of approved boot configurations the manager
// takes with "group update". It needs no Xen and runs wherever the SAA's
// private key is kept.
//
// JSON output (--json) of sign-config and show-config:
//
//	{"family": "1.2"|"2.0", "group_uuid": UUID, "seq": N,
//	 "approvals": [{"pcrs": [N, ...], "digest": HEX}], "size": N,
//	 "verified": B, "key": KEY or null}
//
// keygen: {"key": KEY, "private": PATH, "public": PATH}; KEY as in the
// group command's output.

const saaUsage = `usage:
  xenvtpm saa keygen [--alg rsa|ecdsa] --out PREFIX
      make an SAA key: PREFIX.key (PKCS#8 PEM, mode 0600), PREFIX.pub (PEM)
  xenvtpm saa sign-config --key SAA.key --group-uuid UUID --seq N --family 1.2|2.0
          --pcrs LIST (--values FILE | --tpm DEVICE) [--extend PCR:HEX]... [--pcrs LIST ...]...
          [--also OLD.cfg]... --out SIGNED.cfg
      sign a list of approved boot configurations, one per --pcrs: LIST is
      the PCRs (e.g. 0,2,4 or 0-7), and the --values or --tpm after it says
      their values: FILE has lines "PCR HEX" (SHA-1 for 1.2, SHA-256 for
      2.0; "#" starts a comment), DEVICE is a TPM (/dev/tpmrm0 for 2.0,
      /dev/tpm0 for 1.2) whose current PCRs are taken. --extend approves
      those values as they will be after extending PCR with the digest HEX
      (the new firmware's or boot loader's measurement). --also keeps the
      approvals of a list this key signed before (the running
      configuration, during an upgrade). --seq must be at least the
      group's next sequence number ("group show").
  xenvtpm saa show-config SIGNED.cfg [--key SAA.pub]
      decode a signed list, and verify its signatures if a key is given
every subcommand takes --json
`

func runSAA(args []string) error {
	return subcommand("saa", map[string]func([]string) error{
		"keygen": saaKeygen, "sign-config": saaSignConfig, "show-config": saaShowConfig,
	}, saaUsage, args)
}

func saaKeygen(args []string) error {
	fs := flag.NewFlagSet("xenvtpm saa keygen", flag.ContinueOnError)
	alg := fs.String("alg", "rsa", "rsa (RSA-2048) or ecdsa (P-256)")
	out := fs.String("out", "", "write PREFIX.key and PREFIX.pub")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, 0, "xenvtpm saa keygen [--alg rsa|ecdsa] --out PREFIX"); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	k, err := saa.GenerateKey(*alg)
	if err != nil {
		return err
	}
	priv, err := saa.MarshalPrivatePEM(k)
	if err != nil {
		return err
	}
	pk, err := saa.NewPublicKey(k.Public())
	if err != nil {
		return err
	}
	pub, err := saa.MarshalPublicPEM(pk)
	if err != nil {
		return err
	}
	kf, pf := *out+".key", *out+".pub"
	// Never over an existing key: losing an SAA key loses every group
	// it approves for.
	if err := writeNew(kf, priv, 0o600); err != nil {
		return err
	}
	if err := writeNew(pf, pub, 0o644); err != nil {
		return err
	}
	return output(mgmtFlags{json: *asJSON}, struct {
		Key     *keyJSON `json:"key"`
		Private string   `json:"private"`
		Public  string   `json:"public"`
	}{keyOf(pk), kf, pf}, fmt.Sprintf("SAA key %s\nprivate key %s\npublic key %s\n", pk, kf, pf))
}

// writeNew creates path with mode, refusing to replace a file.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// approvalSpec is one --pcrs group of sign-config.
type approvalSpec struct {
	pcrs   []uint
	values string // a values file, or
	tpm    string // a TPM device
	// extends are applied to those values in order: the configuration
	// after the new firmware or boot loader measures itself.
	extends []pcrExtend
}

// pcrExtend is one --extend PCR:HEX.
type pcrExtend struct {
	pcr    uint
	digest []byte
}

// parseExtend reads --extend's PCR:HEX.
func parseExtend(v string) (pcrExtend, error) {
	p, h, ok := strings.Cut(v, ":")
	n, err := strconv.ParseUint(p, 10, 8)
	if !ok || err != nil || n > 23 {
		return pcrExtend{}, fmt.Errorf("--extend %q: want PCR:HEX with a PCR 0-23", v)
	}
	d, err := hex.DecodeString(h)
	if err != nil || (len(d) != 20 && len(d) != 32) {
		return pcrExtend{}, fmt.Errorf("--extend %q: want a 20-byte (1.2) or 32-byte (2.0) digest in hex", v)
	}
	return pcrExtend{uint(n), d}, nil
}

// extendValues applies the extends to vals: PCR = H(PCR ‖ digest), with
// SHA-1 for TPM 1.2 and SHA-256 for 2.0, as TPM_Extend and TPM2_PCR_Extend
// do.
func extendValues(fam saa.Family, vals map[uint][]byte, ex []pcrExtend) error {
	for _, e := range ex {
		old, ok := vals[e.pcr]
		if !ok {
			return fmt.Errorf("--extend %d: that PCR is not in the approval", e.pcr)
		}
		if len(e.digest) != fam.DigestSize() {
			return fmt.Errorf("--extend %d: a %d-byte digest for a TPM %s PCR", e.pcr, len(e.digest), fam)
		}
		var v []byte
		if fam == saa.Family12 {
			h := sha1.Sum(append(slices.Clone(old), e.digest...))
			v = h[:]
		} else {
			h := sha256.Sum256(append(slices.Clone(old), e.digest...))
			v = h[:]
		}
		vals[e.pcr] = v
	}
	return nil
}

// specList collects --pcrs, --values and --tpm in order.
type specList struct{ specs []approvalSpec }

func (s *specList) last(flagName string) (*approvalSpec, error) {
	if len(s.specs) == 0 {
		return nil, fmt.Errorf("--%s must follow a --pcrs", flagName)
	}
	a := &s.specs[len(s.specs)-1]
	if a.values != "" || a.tpm != "" {
		return nil, fmt.Errorf("--%s: this --pcrs already has its values", flagName)
	}
	return a, nil
}

type specFlag struct {
	s    *specList
	name string
}

func (f specFlag) String() string { return "" }

func (f specFlag) Set(v string) error {
	switch f.name {
	case "pcrs":
		p, err := parsePCRList(v)
		if err != nil {
			return err
		}
		f.s.specs = append(f.s.specs, approvalSpec{pcrs: p})
	case "values":
		a, err := f.s.last("values")
		if err != nil {
			return err
		}
		a.values = v
	case "tpm":
		a, err := f.s.last("tpm")
		if err != nil {
			return err
		}
		a.tpm = v
	case "extend":
		if len(f.s.specs) == 0 {
			return errors.New("--extend must follow a --pcrs and its values")
		}
		a := &f.s.specs[len(f.s.specs)-1]
		if a.values == "" && a.tpm == "" {
			return errors.New("--extend must follow the --values or --tpm of its --pcrs")
		}
		e, err := parseExtend(v)
		if err != nil {
			return err
		}
		a.extends = append(a.extends, e)
	}
	return nil
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// parsePCRList reads "0,2,4" or "0-7,10" into ascending PCRs.
func parsePCRList(s string) ([]uint, error) {
	var mask uint32
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.ParseUint(lo, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("PCR list %q: %q is not a PCR number", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 8); err != nil || b < a {
				return nil, fmt.Errorf("PCR list %q: %q is not a range", s, part)
			}
		}
		if b > 23 {
			return nil, fmt.Errorf("PCR list %q: PCR %d out of range 0..23", s, b)
		}
		for p := a; p <= b; p++ {
			if mask&(1<<p) != 0 {
				return nil, fmt.Errorf("PCR list %q: PCR %d repeated", s, p)
			}
			mask |= 1 << p
		}
	}
	return saa.PCRsOf(mask), nil
}

// parseValues reads a values file: lines "PCR HEX" (also "PCR : 0xHEX"
// under a "sha256:" heading, as tpm2_pcrread prints one bank), blank
// lines and "#" comments, each value size bytes.
func parseValues(r io.Reader, size int) (map[uint][]byte, error) {
	vals := map[uint][]byte{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if bank, ok := strings.CutSuffix(line, ":"); ok && bank != "" && !strings.ContainsAny(bank, " \t:") {
			continue // a bank heading of tpm2_pcrread ("sha256:")
		}
		f := strings.Fields(strings.ReplaceAll(line, ":", " "))
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"PCR HEX\"", n)
		}
		p, err := strconv.ParseUint(f[0], 10, 8)
		if err != nil || p > 23 {
			return nil, fmt.Errorf("line %d: %q is not a PCR number 0..23", n, f[0])
		}
		h := strings.TrimPrefix(strings.TrimPrefix(f[1], "0x"), "0X")
		v, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("line %d: PCR %d value: %w", n, p, err)
		}
		if len(v) != size {
			return nil, fmt.Errorf("line %d: PCR %d value of %d bytes, want %d", n, p, len(v), size)
		}
		if _, dup := vals[uint(p)]; dup {
			return nil, fmt.Errorf("line %d: PCR %d given twice", n, p)
		}
		vals[uint(p)] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vals, nil
}

// readPCRs20 reads the SHA-256 values of pcrs (ascending) with
// TPM2_PCRRead, which may answer a part of a selection at a time.
func readPCRs20(t transport.TPM, pcrs []uint) (map[uint][]byte, error) {
	vals := map[uint][]byte{}
	for {
		var left []uint
		for _, p := range pcrs {
			if _, ok := vals[p]; !ok {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return vals, nil
		}
		r, err := tpm2.PCRRead{PCRSelectionIn: saa.PCRSelection(tpm2.TPMAlgSHA256, left)}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("TPM2_PCRRead: %w", err)
		}
		got := 0
		d := r.PCRValues.Digests
		for _, sel := range r.PCRSelectionOut.PCRSelections {
			for i, byt := range sel.PCRSelect {
				for bit := range 8 {
					if byt&(1<<bit) == 0 {
						continue
					}
					if len(d) == 0 {
						return nil, errors.New("TPM2_PCRRead: fewer values than selected PCRs")
					}
					if sel.Hash == tpm2.TPMAlgSHA256 {
						if len(d[0].Buffer) != 32 {
							return nil, fmt.Errorf("TPM2_PCRRead: a %d-byte SHA-256 value", len(d[0].Buffer))
						}
						vals[uint(8*i+bit)] = d[0].Buffer
						got++
					}
					d = d[1:]
				}
			}
		}
		if got == 0 {
			return nil, fmt.Errorf("the TPM has no SHA-256 values for PCRs %s (no SHA-256 bank?)", pcrList(left))
		}
	}
}

// readPCRs12 reads the SHA-1 values of pcrs with TPM_PcrRead.
func readPCRs12(rw io.ReadWriter, pcrs []uint) (map[uint][]byte, error) {
	vals := map[uint][]byte{}
	for _, p := range pcrs {
		v, err := legacy.ReadPCR(rw, uint32(p))
		if err != nil {
			return nil, fmt.Errorf("TPM_PcrRead(%d): %w", p, err)
		}
		if len(v) != 20 {
			return nil, fmt.Errorf("TPM_PcrRead(%d): a %d-byte value", p, len(v))
		}
		vals[p] = v
	}
	return vals, nil
}

// readTPMValues reads pcrs from the TPM device at path.
func readTPMValues(path string, fam saa.Family, pcrs []uint) (map[uint][]byte, error) {
	if fam == saa.Family20 {
		t, err := linuxtpm.Open(path)
		if err != nil {
			return nil, err
		}
		defer t.Close()
		return readPCRs20(t, pcrs)
	}
	rw, err := legacy.OpenTPM(path)
	if err != nil {
		return nil, err
	}
	defer rw.Close()
	return readPCRs12(rw, pcrs)
}

// approvalFrom is the approval of pcrs with vals.
func approvalFrom(fam saa.Family, pcrs []uint, vals map[uint][]byte) (saa.Approval, error) {
	var vs [][]byte
	for _, p := range pcrs {
		v, ok := vals[p]
		if !ok {
			return saa.Approval{}, fmt.Errorf("no value for PCR %d", p)
		}
		vs = append(vs, v)
	}
	if fam == saa.Family12 {
		c, err := saa.Composite12(pcrs, vs)
		if err != nil {
			return saa.Approval{}, err
		}
		return saa.Approval{PCRs: pcrs, Digest: c[:]}, nil
	}
	return saa.Approval{PCRs: pcrs, Digest: saa.PCRDigest(vs)}, nil
}

func parseFamily(s string) (saa.Family, error) {
	switch s {
	case "1.2", "12":
		return saa.Family12, nil
	case "2.0", "2", "20":
		return saa.Family20, nil
	}
	return 0, fmt.Errorf("--family %q: want 1.2 or 2.0", s)
}

// signConfig is sign-config's parsed command line.
type signConfig struct {
	key, groupUUID, family, out string
	seq                         uint64
	specs                       []approvalSpec
	also                        []string
	json                        bool
}

func parseSignConfig(args []string) (*signConfig, error) {
	var c signConfig
	var specs specList
	var also stringsFlag
	fs := flag.NewFlagSet("xenvtpm saa sign-config", flag.ContinueOnError)
	fs.StringVar(&c.key, "key", "", "the SAA's private key (PEM)")
	fs.StringVar(&c.groupUUID, "group-uuid", "", "the group's UUID (group add, group show)")
	fs.Uint64Var(&c.seq, "seq", 0, "the list's sequence number")
	fs.StringVar(&c.family, "family", "", "the hardware TPM: 1.2 or 2.0")
	fs.Var(specFlag{&specs, "pcrs"}, "pcrs", "an approval's PCRs (0,2,4 or 0-7); repeat for more approvals")
	fs.Var(specFlag{&specs, "values"}, "values", "the preceding --pcrs' values: a file of \"PCR HEX\" lines")
	fs.Var(specFlag{&specs, "tpm"}, "tpm", "the preceding --pcrs' values: read from this TPM device")
	fs.Var(specFlag{&specs, "extend"}, "extend", "PCR:HEX: approve the preceding values after this extend (repeatable)")
	fs.Var(&also, "also", "keep the approvals of this signed list (repeatable)")
	fs.StringVar(&c.out, "out", "", "write the signed list here")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 0 {
		return nil, fmt.Errorf("unexpected argument %q", pos[0])
	}
	c.specs, c.also = specs.specs, also
	switch {
	case c.key == "":
		return nil, errors.New("--key is required")
	case c.groupUUID == "":
		return nil, errors.New("--group-uuid is required")
	case c.seq == 0:
		return nil, errors.New("--seq is required (1 or more)")
	case c.family == "":
		return nil, errors.New("--family is required (1.2 or 2.0)")
	case c.out == "":
		return nil, errors.New("--out is required")
	case len(c.specs) == 0 && len(c.also) == 0:
		return nil, errors.New("no approvals: give --pcrs with --values or --tpm")
	}
	for i, s := range c.specs {
		if s.values == "" && s.tpm == "" {
			return nil, fmt.Errorf("--pcrs %s (approval %d) has no --values or --tpm after it", pcrList(s.pcrs), i)
		}
	}
	return &c, nil
}

// build makes and signs the list, returning it and the SAA's key.
func (c *signConfig) build() ([]byte, saa.PublicKey, error) {
	kb, err := os.ReadFile(c.key)
	if err != nil {
		return nil, saa.PublicKey{}, err
	}
	signer, err := saa.ParsePrivatePEM(kb)
	if err != nil {
		return nil, saa.PublicKey{}, fmt.Errorf("%s: %w", c.key, err)
	}
	pub, err := saa.NewPublicKey(signer.Public())
	if err != nil {
		return nil, saa.PublicKey{}, err
	}
	group, err := mgmt.ParseUUID(c.groupUUID)
	if err != nil {
		return nil, saa.PublicKey{}, err
	}
	fam, err := parseFamily(c.family)
	if err != nil {
		return nil, saa.PublicKey{}, err
	}
	l := saa.ConfigList{Family: fam, Group: group, Seq: c.seq}
	add := func(a saa.Approval) {
		for _, b := range l.Approvals {
			if slices.Equal(a.PCRs, b.PCRs) && bytes.Equal(a.Digest, b.Digest) {
				return
			}
		}
		l.Approvals = append(l.Approvals, saa.Approval{PCRs: a.PCRs, Digest: a.Digest})
	}
	for _, path := range c.also {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, saa.PublicKey{}, err
		}
		s, err := saa.ParseList(b)
		if err != nil {
			return nil, saa.PublicKey{}, fmt.Errorf("--also %s: %w", path, err)
		}
		if err := s.Verify(pub); err != nil {
			return nil, saa.PublicKey{}, fmt.Errorf("--also %s: not signed by this key: %w", path, err)
		}
		if s.List.Family != fam || s.List.Group != group {
			return nil, saa.PublicKey{}, fmt.Errorf("--also %s: a list for TPM %s group %s, not TPM %s group %s", path,
				s.List.Family, mgmt.FormatUUID(s.List.Group), fam, mgmt.FormatUUID(group))
		}
		for _, a := range s.List.Approvals {
			add(a)
		}
	}
	for i, s := range c.specs {
		var vals map[uint][]byte
		if s.values != "" {
			f, err := os.Open(s.values)
			if err != nil {
				return nil, saa.PublicKey{}, err
			}
			vals, err = parseValues(f, fam.DigestSize())
			f.Close()
			if err != nil {
				return nil, saa.PublicKey{}, fmt.Errorf("%s: %w", s.values, err)
			}
		} else if vals, err = readTPMValues(s.tpm, fam, s.pcrs); err != nil {
			return nil, saa.PublicKey{}, fmt.Errorf("%s: %w", s.tpm, err)
		}
		if err := extendValues(fam, vals, s.extends); err != nil {
			return nil, saa.PublicKey{}, fmt.Errorf("approval %d (PCRs %s): %w", i, pcrList(s.pcrs), err)
		}
		a, err := approvalFrom(fam, s.pcrs, vals)
		if err != nil {
			return nil, saa.PublicKey{}, fmt.Errorf("approval %d (PCRs %s): %w", i, pcrList(s.pcrs), err)
		}
		add(a)
	}
	b, err := saa.SignList(l, signer)
	return b, pub, err
}

func saaSignConfig(args []string) error {
	c, err := parseSignConfig(args)
	if err != nil {
		return err
	}
	b, pub, err := c.build()
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.out, b, 0o644); err != nil {
		return err
	}
	s, err := saa.ParseList(b)
	if err != nil {
		return err
	}
	if err := s.Verify(pub); err != nil {
		return err
	}
	j, text := describeList(s, pub, true)
	return output(mgmtFlags{json: c.json}, j, fmt.Sprintf("wrote %s\n%s", c.out, text))
}

// listJSON is a signed list in JSON output.
type listJSON struct {
	Family    string         `json:"family"`
	GroupUUID string         `json:"group_uuid"`
	Seq       uint64         `json:"seq"`
	Approvals []approvalJSON `json:"approvals"`
	Size      int            `json:"size"`
	Verified  bool           `json:"verified"`
	Key       *keyJSON       `json:"key"`
}

// describeList is a list's JSON and text; verified says whether key's
// signatures were checked.
func describeList(s *saa.Signed, key saa.PublicKey, verified bool) (listJSON, string) {
	l := s.List
	j := listJSON{Family: l.Family.String(), GroupUUID: mgmt.FormatUUID(l.Group), Seq: l.Seq,
		Approvals: []approvalJSON{}, Size: len(s.Raw), Verified: verified, Key: keyOf(key)}
	var b strings.Builder
	fmt.Fprintf(&b, "signed configuration list, %d bytes\n", len(s.Raw))
	fmt.Fprintf(&b, "  family      TPM %s\n", l.Family)
	fmt.Fprintf(&b, "  group uuid  %s\n", mgmt.FormatUUID(l.Group))
	fmt.Fprintf(&b, "  sequence    %d\n", l.Seq)
	for i, a := range l.Approvals {
		j.Approvals = append(j.Approvals, approvalJSON{PCRs: a.PCRs, Digest: hex.EncodeToString(a.Digest)})
		fmt.Fprintf(&b, "  approval %d  PCRs %s digest %x\n", i, pcrList(a.PCRs), a.Digest)
	}
	if verified {
		fmt.Fprintf(&b, "  signatures  verified with %s\n", key)
	} else {
		fmt.Fprintf(&b, "  signatures  not verified (no --key)\n")
	}
	return j, b.String()
}

func saaShowConfig(args []string) error {
	fs := flag.NewFlagSet("xenvtpm saa show-config", flag.ContinueOnError)
	keyFile := fs.String("key", "", "verify with this SAA public key")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm saa show-config SIGNED.cfg [--key SAA.pub]"); err != nil {
		return err
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	s, err := saa.ParseList(b)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	var k saa.PublicKey
	if *keyFile != "" {
		if k, err = readPublicKey(*keyFile); err != nil {
			return err
		}
		if err := s.Verify(k); err != nil {
			return fmt.Errorf("%s: not signed by %s: %w", pos[0], k, err)
		}
	}
	j, text := describeList(s, k, !k.IsZero())
	return output(mgmtFlags{json: *asJSON}, j, text)
}
