package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// Deep quotes (attest/deepquote, docs/deep-quote.md): `xenvtpm deepquote`
// runs in the guest, `xenvtpm group ak` in dom0, `xenvtpm verify quote`
// anywhere.

const deepquoteUsage = `usage: xenvtpm deepquote --nonce HEX [--pcrs LIST] [--device PATH] [--repeat N] -o FILE
  in a guest whose TPM is a xenvtpm vTPM with a manager: ask for a deep quote (a
  hardware TPM quote binding the nonce, this vTPM, its PCRs LIST (default 0-7,
  SHA-256 bank; SHA-1 on a TPM 1.2 vTPM, whose nonce is 20 bytes) and its
  group's approved configuration) and write it to FILE; --repeat N asks N
  times and prints the round trip's p50 and p99
`

func runDeepQuote(args []string) error {
	fs := flag.NewFlagSet("xenvtpm deepquote", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, deepquoteUsage) }
	nonceHex := fs.String("nonce", "", "the verifier's nonce, hexadecimal (at most 64 bytes)")
	pcrList := fs.String("pcrs", "0-7", "the vTPM PCRs (SHA-256 bank) to bind")
	device := fs.String("device", "/dev/tpm0", "the TPM device")
	out := fs.String("o", "", "write the deep quote here")
	repeat := fs.Int("repeat", 1, "ask this many times (waiting when the manager says to retry) and print the round trip's p50 and p99")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("xenvtpm deepquote: -o FILE is required")
	}
	nonce, err := hex.DecodeString(*nonceHex)
	if err != nil {
		return fmt.Errorf("--nonce: %w", err)
	}
	pcrs, err := parsePCRList(*pcrList)
	if err != nil {
		return err
	}
	mask, err := saa.PCRMask(pcrs)
	if err != nil {
		return err
	}
	cmd, err := deepquote.EncodeCommand(nonce, mask)
	if err != nil {
		return err
	}
	f, err := openTPM(*device)
	if err != nil {
		return err
	}
	defer f.Close()
	var q *deepquote.Bundle
	var took []time.Duration
	tpm12 := false
	for len(took) < max(*repeat, 1) {
		t0 := time.Now()
		rsp, err := transmit(f, cmd)
		if err != nil {
			return err
		}
		// A TPM 1.2 answers the TPM 2.0 command with its own tag
		// (TPM_BADTAG): ask it with TPM_ORD_DeepQuote.
		if !tpm12 && len(rsp) >= 2 && binary.BigEndian.Uint16(rsp) == 0x00C4 {
			tpm12 = true
			if cmd, err = deepquote.EncodeCommand12(nonce, mask); err != nil {
				return fmt.Errorf("%s is a TPM 1.2: %w", *device, err)
			}
			continue
		}
		if q, err = deepquote.DecodeResponse(rsp); err != nil {
			var re *deepquote.ResponseError
			if errors.As(err, &re) && (re.Code == 0x922 || re.Code == 0x800) && *repeat > 1 {
				time.Sleep(250 * time.Millisecond) // TPM_RC_RETRY, TPM_RETRY: the manager rations deep quotes
				continue
			}
			return err
		}
		took = append(took, time.Since(t0))
	}
	if *repeat > 1 {
		slices.Sort(took)
		fmt.Fprintf(stdout, "deep quote round trip over %d: p50 %v, p99 %v\n", len(took),
			took[len(took)/2].Round(time.Microsecond), took[(len(took)*99+99)/100-1].Round(time.Microsecond))
	}
	enc, err := q.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, enc, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "deep quote of vTPM %s (group %s), %d vTPM PCRs (%s), written to %s (%d bytes)\n",
		mgmt.FormatUUID(q.Binding.VTPM), mgmt.FormatUUID(q.Binding.Group), len(q.VTPMPCRValues), bankName(q.Binding.VTPMBank), *out, len(enc))
	return err
}

// openTPM opens a TPM character device for blocking I/O. os.OpenFile
// would put it in non-blocking mode (it polls), where Linux's tpm-dev
// queues a write and a read that comes before the answer returns 0 bytes
// (EOF) instead of waiting.
func openTPM(path string) (*os.File, error) {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// transmit sends a command on the TPM device and returns the answer.
func transmit(f *os.File, cmd []byte) ([]byte, error) {
	if _, err := f.Write(cmd); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	rsp := make([]byte, 4096)
	n, err := f.Read(rsp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return rsp[:n], nil
}

// bankName names a deep quote's vTPM PCR bank.
func bankName(bank uint16) string {
	if bank == deepquote.BankSHA1 {
		return "SHA-1"
	}
	return "SHA-256"
}

// groupAK fetches a group's attestation key and proves it is in the
// hardware TPM whose EK the manager reports: TPM2_MakeCredential here
// against that EK and the key's name, TPM2_ActivateCredential there
// (GROUP_ACTIVATE); only that TPM can undo it, and only for that key.
func groupAK(args []string) error {
	var m mgmtFlags
	fs := newSub("group ak", &m)
	out := fs.String("o", "", "write the attestation key (PEM public key) here, once proven")
	ekOut := fs.String("ek", "", "write the hardware TPM's EK (PEM public key) here")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm group ak ID [-o AK.pem] [--ek EK.pem]"); err != nil {
		return err
	}
	id, err := parseGroupID(pos[0])
	if err != nil {
		return err
	}
	return withManager(m, func(c managerClient) error {
		ak, err := c.GroupAK(id)
		if err != nil {
			return err
		}
		how := "TPM2_ActivateCredential"
		if ak.Family == deepquote.HW12 {
			how = "TPM_ActivateIdentity"
		}
		if err := proveAK(c, id, ak); err != nil {
			return err
		}
		akPEM, err := publicPEM(ak.AK)
		if err != nil {
			return err
		}
		ekPEM, err := publicPEM(ak.EK)
		if err != nil {
			return err
		}
		for _, f := range []struct{ name, pem string }{{*out, akPEM}, {*ekOut, ekPEM}} {
			if f.name != "" {
				if err := os.WriteFile(f.name, []byte(f.pem), 0o644); err != nil {
					return err
				}
			}
		}
		type akJSON struct {
			Group       uint32 `json:"group"`
			AKName      string `json:"ak_name"`
			AK          string `json:"ak"`
			EK          string `json:"ek"`
			EKCert      bool   `json:"ek_certificate"`
			Activated   bool   `json:"activated"`
			EKCertBytes []byte `json:"ek_certificate_der,omitempty"`
		}
		text := fmt.Sprintf("group %d attestation key (name %x) proven resident in the hardware TPM by %s against its EK\n", id, ak.AKName, how)
		if ak.Family == deepquote.HW12 {
			text = fmt.Sprintf("group %d TPM 1.2 identity key (group %s) proven resident in the hardware TPM by %s against its EK\n", id, mgmt.FormatUUID(ak.Group), how)
		}
		if ak.EKCert != nil {
			// The certificate is the manufacturer's word for the EK the
			// manager reports: it must be for that key.
			c, err := x509.ParseCertificate(ak.EKCert)
			if err != nil {
				return fmt.Errorf("group %d: the hardware EK certificate: %w", id, err)
			}
			if k, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(ak.EK) {
				return fmt.Errorf("group %d: the hardware EK certificate (from %q) is for another key than the EK the manager reports", id, c.Issuer.String())
			}
			text += fmt.Sprintf("the hardware EK has a certificate from %q for that EK (not checked against the manufacturer's CA here)\n", c.Issuer.String())
		} else if ak.Family == deepquote.HW12 {
			text += "the hardware TPM 1.2 has no EK certificate at TPM_NV_INDEX_EKCert: check its EK another way\n"
		} else {
			text += "the hardware TPM has no EK certificate at 0x01C00002: check its EK another way\n"
		}
		if *out == "" {
			text += akPEM
		} else {
			text += "attestation key written to " + *out + "\n"
		}
		return output(m, akJSON{id, hex.EncodeToString(ak.AKName), akPEM, ekPEM, ak.EKCert != nil, true, ak.EKCert}, text)
	})
}

// proveAK has the hardware TPM prove it holds ak: on TPM 2.0
// TPM2_MakeCredential here against the EK and the key's name, undone by
// TPM2_ActivateCredential there; on TPM 1.2 a privacy CA's
// TPM_ASYM_CA_CONTENTS (a fresh TPM_SYMMETRIC_KEY and the digest of the
// identity key's TPM_PUBKEY, RSA-OAEP to the EK, hwtpm.ActivationBlob12)
// undone by TPM_ActivateIdentity. Only the TPM of that EK can undo either,
// and only for that key.
func proveAK(c managerClient, id uint32, ak *mgmt.GroupAK) error {
	secret := make([]byte, 32)
	rand.Read(secret)
	var blob, encSecret, want []byte
	if ak.Family == deepquote.HW12 {
		ek, ok := ak.EK.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("the hardware EK is a %T", ak.EK)
		}
		want = hwtpm.SymmetricKey12(secret[:16])
		var err error
		if blob, err = hwtpm.ActivationBlob12(ek, want, ak.AKPublic, false); err != nil {
			return err
		}
	} else {
		ekPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ak.EKPublic)
		if err != nil {
			return err
		}
		enc, err := tpm2.ImportEncapsulationKey(ekPub)
		if err != nil {
			return fmt.Errorf("the hardware EK: %w", err)
		}
		if blob, encSecret, err = tpm2.CreateCredential(rand.Reader, enc, ak.AKName, secret); err != nil {
			return err
		}
		want = secret
	}
	got, err := c.GroupActivate(id, blob, encSecret)
	if err != nil {
		return fmt.Errorf("the hardware TPM did not activate a credential for the attestation key: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("the hardware TPM activated the credential to another secret: the attestation key is not proven")
	}
	return nil
}

func publicPEM(k any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// pcrValuesFlag is --vtpm-pcr N:HEX, repeated.
type pcrValuesFlag map[int][]byte

func (p pcrValuesFlag) String() string { return "" }
func (p pcrValuesFlag) Set(v string) error {
	n, h, ok := strings.Cut(v, ":")
	i, err := strconv.Atoi(n)
	if !ok || err != nil || i < 0 || i > 23 {
		return fmt.Errorf("%q is not PCR:HEX (PCR 0..23)", v)
	}
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(h), "0x"))
	if err != nil || (len(b) != 32 && len(b) != 20) {
		return fmt.Errorf("%q: the value is not 32 (SHA-256) or 20 (SHA-1, a TPM 1.2 vTPM) bytes of hexadecimal", v)
	}
	p[i] = b
	return nil
}

func verifyQuote(args []string) error {
	fs := flag.NewFlagSet("xenvtpm verify quote", flag.ContinueOnError)
	akFile := fs.String("ak", "", "the group's attestation key (PEM, from xenvtpm group ak)")
	nonceHex := fs.String("nonce", "", "the nonce the guest was given, hexadecimal")
	uuidS := fs.String("uuid", "", "the vTPM the quote must be of")
	saaFile := fs.String("saa", "", "the group's SAA public key (PEM); with --list")
	listFile := fs.String("list", "", "the group's installed signed configuration list")
	vals := pcrValuesFlag{}
	fs.Var(vals, "vtpm-pcr", "PCR:HEX, a vTPM PCR value (SHA-256; SHA-1 for a TPM 1.2 vTPM) the quote must bind (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm verify quote FILE --ak AK.pem --nonce HEX [--uuid U] [--vtpm-pcr N:HEX]... [--saa SAA.pub --list LIST.cfg]"); err != nil {
		return err
	}
	if *akFile == "" || (*saaFile == "") != (*listFile == "") {
		return errors.New("xenvtpm verify quote: --ak is required, and --saa and --list go together")
	}
	t := deepquote.Trust{VTPMPCRs: vals}
	der, err := readPEMOrDER(*akFile, "PUBLIC KEY")
	if err != nil {
		return err
	}
	if t.AK, err = x509.ParsePKIXPublicKey(der); err != nil {
		return fmt.Errorf("%s: %w", *akFile, err)
	}
	if t.Nonce, err = hex.DecodeString(*nonceHex); err != nil {
		return fmt.Errorf("--nonce: %w", err)
	}
	if *uuidS != "" {
		u, err := mgmt.ParseUUID(*uuidS)
		if err != nil {
			return err
		}
		t.VTPM = &u
	}
	if *saaFile != "" {
		k, err := readPublicKey(*saaFile)
		if err != nil {
			return err
		}
		t.SAA = &k
		if t.List, err = os.ReadFile(*listFile); err != nil {
			return err
		}
	}
	raw, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	q, err := deepquote.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	r, err := deepquote.Verify(q, t)
	if err != nil {
		return fmt.Errorf("%s: NOT VERIFIED: %w", pos[0], err)
	}
	cfg := "configuration not checked (no --saa/--list)"
	if r.Approval >= 0 {
		cfg = fmt.Sprintf("hardware PCRs %v match approval %d of the SAA's list (sequence %d)", r.HWPCRs, r.Approval, r.Binding.ListSeq)
	}
	_, err = fmt.Fprintf(stdout, "%s: VERIFIED: vTPM %s of group %s, nonce, %d vTPM PCRs (%s) bound; %s\n",
		pos[0], mgmt.FormatUUID(r.Binding.VTPM), mgmt.FormatUUID(r.Binding.Group), len(q.VTPMPCRValues), bankName(r.Binding.VTPMBank), cfg)
	return err
}
