package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// The group and vtpm commands speak the manager's management ordinals
// (toolstack/mgmt) through a vtpm frontend of dom0's attached to the
// manager domain; the manager takes them only from its administrator
// frontend. docs/manager-groups.md is the administrator's guide.
//
// JSON output (--json), one object per command:
//
//	group add:   {"group": ID, "uuid": UUID, "key": KEY}
//	group list:  {"groups": [ID, ...]}
//	group show:  {"group": ID, "uuid": UUID, "key": KEY or null,
//	              "seq": N, "next_seq": N, "family": "1.2"|"2.0"|"",
//	              "approvals": [{"pcrs": [N, ...], "digest": HEX}],
//	              "vtpms": N, "auto_create": B, "sealed": B, "pcrs_match": B}
//	group update: {"group": ID, "seq": N}
//	group del:   {"group": ID}
//	vtpm add:    {"group": ID, "uuid": UUID}
//	vtpm list:   {"vtpms": [{"group": ID, "uuid": UUID}, ...]}
//	vtpm del:    {"uuid": UUID}
//
// where KEY is {"alg": "rsa"|"ecdsa", "fingerprint": HEX16, "bytes": HEX}
// and UUID the canonical 8-4-4-4-12 form.

// MgmtTimeout bounds one management ordinal: GROUP_NEW and GROUP_UPDATE
// reseal the manager's storage key with the hardware TPM.
const MgmtTimeout = 2 * time.Minute

// managerClient is the part of mgmt.Client the commands use.
type managerClient interface {
	GroupList() ([]uint32, error)
	GroupNew(saa.PublicKey) ([16]byte, uint32, error)
	GroupDel(uint32) error
	GroupUpdate(uint32, []byte) error
	GroupShow(uint32) (*mgmt.GroupInfo, error)
	GroupCACert(uint32) (*x509.Certificate, error)
	GroupAK(uint32) (*mgmt.GroupAK, error)
	GroupActivate(id uint32, credentialBlob, secret []byte) ([]byte, error)
	VTPMList(uint32) ([][16]byte, error)
	VTPMNew(uint32, *[16]byte) ([16]byte, error)
	VTPMDel([16]byte) error
}

// connectManager attaches to the manager domain; tests replace it.
var connectManager = func(ctx context.Context, domain string) (managerClient, func() error, error) {
	a, err := attach(ctx, domain)
	if err != nil {
		return nil, nil, err
	}
	return mgmt.Client{T: a.dev.TPM(MgmtTimeout)}, a.close, nil
}

// stdout is where results go; tests replace it.
var stdout io.Writer = os.Stdout

// mgmtFlags are the options every group and vtpm subcommand takes.
type mgmtFlags struct {
	manager string
	json    bool
}

func (m *mgmtFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.manager, "manager", "vtpmmgr", "the manager domain (name or id)")
	fs.BoolVar(&m.json, "json", false, "print JSON instead of text")
}

// parseInterspersed parses fs's flags wherever they stand among the
// positional arguments ("group show 3 --json"), which flag.Parse alone
// does not; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if len(args) > 0 && args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// subcommand dispatches "xenvtpm NAME SUB ...".
func subcommand(name string, subs map[string]func([]string) error, usage string, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(args) == 0 {
			return fmt.Errorf("%s needs a subcommand", name)
		}
		return nil
	}
	f, ok := subs[args[0]]
	if !ok {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown %s subcommand %q", name, args[0])
	}
	if err := f(args[1:]); !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}

const groupUsage = `usage:
  xenvtpm group add --key SAA.pub            register an SAA key: group 0's if the
                                             manager has none yet, else a new group
  xenvtpm group list                         the manager's group IDs
  xenvtpm group show ID                      a group's key, installed list, vTPMs
  xenvtpm group update ID SIGNED.cfg [--no-check]  install a list signed by the group's SAA
  xenvtpm group del ID                       delete a group that has no vTPMs
  xenvtpm group ca-cert ID [-o FILE]         the group's EK CA certificate (PEM), which
                                             signs its vTPMs' EK certificates
  xenvtpm group ak ID [-o AK.pem] [--ek EK.pem]  the group's attestation key in the
                                             hardware TPM, proven there with
                                             TPM2_ActivateCredential against its EK
every subcommand takes --manager DOMAIN (default vtpmmgr) and --json
`

func runGroup(args []string) error {
	return subcommand("group", map[string]func([]string) error{
		"add": groupAdd, "list": groupList, "show": groupShow, "update": groupUpdate, "del": groupDel,
		"ca-cert": groupCACert, "ak": groupAK,
	}, groupUsage, args)
}

const vtpmUsage = `usage:
  xenvtpm vtpm add GROUP [--uuid UUID]       create a vTPM in a group (the manager
                                             picks the UUID if none is given)
  xenvtpm vtpm list [GROUP]                  the vTPMs of a group, or of every group
  xenvtpm vtpm del UUID                      delete a vTPM and its secrets
every subcommand takes --manager DOMAIN (default vtpmmgr) and --json
`

func runVTPM(args []string) error {
	return subcommand("vtpm", map[string]func([]string) error{
		"add": vtpmAdd, "list": vtpmList, "del": vtpmDel,
	}, vtpmUsage, args)
}

// withManager connects, runs f and disconnects.
func withManager(m mgmtFlags, f func(managerClient) error) error {
	ctx, stop := signalContext()
	defer stop()
	c, closeFn, err := connectManager(ctx, m.manager)
	if err != nil {
		return err
	}
	err = f(c)
	if cerr := closeFn(); err == nil && cerr != nil {
		logf("detaching from the manager: %v", cerr)
	}
	return err
}

// output prints v as JSON, or text as is.
func output(m mgmtFlags, v any, text string) error {
	if m.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := io.WriteString(stdout, text)
	return err
}

func parseGroupID(s string) (uint32, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("group ID %q: want a number", s)
	}
	return uint32(id), nil
}

// newSub is a FlagSet for "xenvtpm NAME SUB" with the manager options.
func newSub(name string, m *mgmtFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("xenvtpm "+name, flag.ContinueOnError)
	m.register(fs)
	return fs
}

// wantArgs checks the number of positional arguments.
func wantArgs(pos []string, min, max int, what string) error {
	if len(pos) < min || len(pos) > max {
		return fmt.Errorf("usage: %s", what)
	}
	return nil
}

// keyJSON is a key in JSON output.
type keyJSON struct {
	Alg         string `json:"alg"`
	Fingerprint string `json:"fingerprint"`
	Bytes       string `json:"bytes"`
}

func keyOf(k saa.PublicKey) *keyJSON {
	if k.IsZero() {
		return nil
	}
	return &keyJSON{Alg: k.Alg(), Fingerprint: k.Fingerprint(), Bytes: hex.EncodeToString(k.Bytes())}
}

func groupAdd(args []string) error {
	var m mgmtFlags
	fs := newSub("group add", &m)
	keyFile := fs.String("key", "", "the SAA's public key (PEM, or the raw 256-byte modulus or 65-byte point)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, 0, "xenvtpm group add --key SAA.pub"); err != nil {
		return err
	}
	if *keyFile == "" {
		return errors.New("--key is required")
	}
	k, err := readPublicKey(*keyFile)
	if err != nil {
		return err
	}
	return withManager(m, func(c managerClient) error {
		u, id, err := c.GroupNew(k)
		if err != nil {
			return err
		}
		return output(m, struct {
			Group uint32   `json:"group"`
			UUID  string   `json:"uuid"`
			Key   *keyJSON `json:"key"`
		}{id, mgmt.FormatUUID(u), keyOf(k)},
			fmt.Sprintf("group %d\nuuid %s\nkey %s\n", id, mgmt.FormatUUID(u), k))
	})
}

func groupList(args []string) error {
	var m mgmtFlags
	fs := newSub("group list", &m)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, 0, "xenvtpm group list"); err != nil {
		return err
	}
	return withManager(m, func(c managerClient) error {
		ids, err := c.GroupList()
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&b, "%d\n", id)
		}
		if ids == nil {
			ids = []uint32{}
		}
		return output(m, struct {
			Groups []uint32 `json:"groups"`
		}{ids}, b.String())
	})
}

// groupJSON is GROUP_SHOW in JSON output.
type groupJSON struct {
	Group      uint32         `json:"group"`
	UUID       string         `json:"uuid"`
	Key        *keyJSON       `json:"key"`
	Seq        uint64         `json:"seq"`
	NextSeq    uint64         `json:"next_seq"`
	Family     string         `json:"family"`
	Approvals  []approvalJSON `json:"approvals"`
	VTPMs      uint32         `json:"vtpms"`
	AutoCreate bool           `json:"auto_create"`
	Sealed     bool           `json:"sealed"`
	PCRsMatch  bool           `json:"pcrs_match"`
}

type approvalJSON struct {
	PCRs   []uint `json:"pcrs"`
	Digest string `json:"digest"`
}

func familyName(f saa.Family) string {
	if f == 0 {
		return ""
	}
	return f.String()
}

func showGroupJSON(id uint32, g *mgmt.GroupInfo) groupJSON {
	j := groupJSON{Group: id, UUID: mgmt.FormatUUID(g.UUID), Key: keyOf(g.Key), Seq: g.Seq, NextSeq: g.NextSeq,
		Family: familyName(g.Family), Approvals: []approvalJSON{}, VTPMs: g.VTPMs,
		AutoCreate: g.AutoCreate(), Sealed: g.Sealed(), PCRsMatch: g.PCRsMatch()}
	for _, a := range g.Approvals {
		j.Approvals = append(j.Approvals, approvalJSON{PCRs: a.PCRs, Digest: hex.EncodeToString(a.Digest)})
	}
	return j
}

func pcrList(pcrs []uint) string {
	s := make([]string, len(pcrs))
	for i, p := range pcrs {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	return strings.Join(s, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// showGroupText is GROUP_SHOW for people.
func showGroupText(id uint32, g *mgmt.GroupInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "group %d\n", id)
	fmt.Fprintf(&b, "  uuid        %s\n", mgmt.FormatUUID(g.UUID))
	if g.Key.IsZero() {
		fmt.Fprintf(&b, "  saa key     none\n")
	} else {
		fmt.Fprintf(&b, "  saa key     %s (fingerprint %s)\n", g.Key.Alg(), g.Key.Fingerprint())
	}
	if g.Seq == 0 {
		fmt.Fprintf(&b, "  list        none installed; the first list may carry sequence %d or above\n", g.NextSeq)
	} else {
		fmt.Fprintf(&b, "  list        sequence %d, TPM %s, %d approvals; the next list must carry %d or above\n",
			g.Seq, g.Family, len(g.Approvals), g.NextSeq)
	}
	for i, a := range g.Approvals {
		fmt.Fprintf(&b, "  approval %d  PCRs %s digest %x\n", i, pcrList(a.PCRs), a.Digest)
	}
	fmt.Fprintf(&b, "  vtpms       %d\n", g.VTPMs)
	fmt.Fprintf(&b, "  auto-create %s (unknown vTPM UUIDs are created in this group)\n", yesNo(g.AutoCreate()))
	fmt.Fprintf(&b, "  sealed      %s (the storage key is sealed to this group's approvals)\n", yesNo(g.Sealed()))
	fmt.Fprintf(&b, "  pcrs match  %s (the hardware PCRs match one of its approvals)\n", yesNo(g.PCRsMatch()))
	return b.String()
}

func groupShow(args []string) error {
	var m mgmtFlags
	fs := newSub("group show", &m)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm group show ID"); err != nil {
		return err
	}
	id, err := parseGroupID(pos[0])
	if err != nil {
		return err
	}
	return withManager(m, func(c managerClient) error {
		g, err := c.GroupShow(id)
		if err != nil {
			return err
		}
		return output(m, showGroupJSON(id, g), showGroupText(id, g))
	})
}

func groupCACert(args []string) error {
	var m mgmtFlags
	fs := newSub("group ca-cert", &m)
	out := fs.String("o", "", "write the PEM certificate to this file (default: standard output)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm group ca-cert ID"); err != nil {
		return err
	}
	id, err := parseGroupID(pos[0])
	if err != nil {
		return err
	}
	return withManager(m, func(c managerClient) error {
		cert, err := c.GroupCACert(id)
		if err != nil {
			return err
		}
		p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
		if *out != "" {
			if err := os.WriteFile(*out, p, 0o644); err != nil {
				return err
			}
		}
		type caJSON struct {
			Group   uint32 `json:"group"`
			Subject string `json:"subject"`
			PEM     string `json:"pem"`
		}
		text := string(p)
		if *out != "" {
			text = fmt.Sprintf("group %d EK CA %q written to %s\n", id, cert.Subject.CommonName, *out)
		}
		return output(m, caJSON{id, cert.Subject.CommonName, string(p)}, text)
	})
}

// checkListFor refuses, before the manager does and with a clearer
// reason, a list that is not for group g: another group's, signed by
// another key, or not newer than the installed one.
func checkListFor(s *saa.Signed, id uint32, g *mgmt.GroupInfo) error {
	if s.List.Group != g.UUID {
		return fmt.Errorf("the list is for group UUID %s, group %d is %s", mgmt.FormatUUID(s.List.Group), id, mgmt.FormatUUID(g.UUID))
	}
	if g.Key.IsZero() {
		return fmt.Errorf("group %d has no SAA key", id)
	}
	if err := s.Verify(g.Key); err != nil {
		return fmt.Errorf("the list is not signed by group %d's SAA key %s: %w", id, g.Key, err)
	}
	if g.Family != 0 && s.List.Family != g.Family {
		return fmt.Errorf("the list is for TPM %s, group %d's installed list for TPM %s", s.List.Family, id, g.Family)
	}
	if s.List.Seq < g.NextSeq {
		return fmt.Errorf("the list's sequence number %d is below %d, the lowest group %d takes (an older list)", s.List.Seq, g.NextSeq, id)
	}
	return nil
}

func groupUpdate(args []string) error {
	var m mgmtFlags
	fs := newSub("group update", &m)
	noCheck := fs.Bool("no-check", false, "send the list without checking it against the group first (the manager checks it anyway)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, 2, "xenvtpm group update ID SIGNED.cfg"); err != nil {
		return err
	}
	id, err := parseGroupID(pos[0])
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(pos[1])
	if err != nil {
		return err
	}
	s, err := saa.ParseList(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[1], err)
	}
	return withManager(m, func(c managerClient) error {
		g, err := c.GroupShow(id)
		if err != nil {
			return err
		}
		if err := checkListFor(s, id, g); err != nil && !*noCheck {
			return fmt.Errorf("%s: %w", pos[1], err)
		}
		if err := c.GroupUpdate(id, raw); err != nil {
			return err
		}
		return output(m, struct {
			Group uint32 `json:"group"`
			Seq   uint64 `json:"seq"`
		}{id, s.List.Seq}, fmt.Sprintf("group %d: installed list sequence %d (TPM %s, %d approvals)\n",
			id, s.List.Seq, s.List.Family, len(s.List.Approvals)))
	})
}

func groupDel(args []string) error {
	var m mgmtFlags
	fs := newSub("group del", &m)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm group del ID"); err != nil {
		return err
	}
	id, err := parseGroupID(pos[0])
	if err != nil {
		return err
	}
	return withManager(m, func(c managerClient) error {
		if err := c.GroupDel(id); err != nil {
			return err
		}
		return output(m, struct {
			Group uint32 `json:"group"`
		}{id}, fmt.Sprintf("group %d deleted\n", id))
	})
}

func vtpmAdd(args []string) error {
	var m mgmtFlags
	fs := newSub("vtpm add", &m)
	uuidFlag := fs.String("uuid", "", "the vTPM's UUID (the uuid= of its vtpm device); the manager picks one if omitted")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm vtpm add GROUP [--uuid UUID]"); err != nil {
		return err
	}
	id, err := parseGroupID(pos[0])
	if err != nil {
		return err
	}
	var want *[16]byte
	if *uuidFlag != "" {
		u, err := mgmt.ParseUUID(*uuidFlag)
		if err != nil {
			return err
		}
		want = &u
	}
	return withManager(m, func(c managerClient) error {
		u, err := c.VTPMNew(id, want)
		if err != nil {
			return err
		}
		return output(m, struct {
			Group uint32 `json:"group"`
			UUID  string `json:"uuid"`
		}{id, mgmt.FormatUUID(u)}, mgmt.FormatUUID(u)+"\n")
	})
}

type vtpmJSON struct {
	Group uint32 `json:"group"`
	UUID  string `json:"uuid"`
}

func vtpmList(args []string) error {
	var m mgmtFlags
	fs := newSub("vtpm list", &m)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, 1, "xenvtpm vtpm list [GROUP]"); err != nil {
		return err
	}
	var groups []uint32
	if len(pos) == 1 {
		id, err := parseGroupID(pos[0])
		if err != nil {
			return err
		}
		groups = []uint32{id}
	}
	return withManager(m, func(c managerClient) error {
		if groups == nil {
			var err error
			if groups, err = c.GroupList(); err != nil {
				return err
			}
		}
		out := []vtpmJSON{}
		var b strings.Builder
		for _, g := range groups {
			us, err := c.VTPMList(g)
			if err != nil {
				return fmt.Errorf("group %d: %w", g, err)
			}
			for _, u := range us {
				out = append(out, vtpmJSON{g, mgmt.FormatUUID(u)})
				fmt.Fprintf(&b, "%d %s\n", g, mgmt.FormatUUID(u))
			}
		}
		return output(m, struct {
			VTPMs []vtpmJSON `json:"vtpms"`
		}{out}, b.String())
	})
}

func vtpmDel(args []string) error {
	var m mgmtFlags
	fs := newSub("vtpm del", &m)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm vtpm del UUID"); err != nil {
		return err
	}
	u, err := mgmt.ParseUUID(pos[0])
	if err != nil {
		return err
	}
	return withManager(m, func(c managerClient) error {
		if err := c.VTPMDel(u); err != nil {
			return err
		}
		return output(m, struct {
			UUID string `json:"uuid"`
		}{mgmt.FormatUUID(u)}, fmt.Sprintf("vTPM %s deleted\n", mgmt.FormatUUID(u)))
	})
}

// readPublicKey reads an SAA public key file.
func readPublicKey(path string) (saa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return saa.PublicKey{}, err
	}
	k, err := saa.ParsePublicPEM(b)
	if err != nil {
		return saa.PublicKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
