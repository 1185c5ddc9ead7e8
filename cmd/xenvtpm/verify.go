package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
)

const verifyUsage = `usage:
  xenvtpm verify ekcert CERT --ca CA.pem [--ek EK.pem]
      check a vTPM's EK certificate (DER or PEM, e.g. tpm2_getekcertificate's
      output) against its group's CA (xenvtpm group ca-cert) and, with --ek,
      that it certifies that key (PEM public key, e.g. tpm2_createek -f pem)
  xenvtpm verify quote FILE --ak AK.pem --nonce HEX [--uuid U] [--vtpm-pcr N:HEX]...
                       [--saa SAA.pub --list LIST.cfg]
      check a deep quote (xenvtpm deepquote) link by link: the hardware quote's
      signature by the group's attestation key (xenvtpm group ak), its binding,
      the nonce, the vTPM, its PCR values, and with --saa/--list the SAA, the
      installed list and that the hardware PCRs are a configuration it approves
`

func runVerify(args []string) error {
	return subcommand("verify", map[string]func([]string) error{"ekcert": verifyEKCert, "quote": verifyQuote}, verifyUsage, args)
}

// readPEMOrDER returns the DER in a file holding one PEM block of the
// given type or raw DER.
func readPEMOrDER(file, typ string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != typ {
			return nil, fmt.Errorf("%s: a PEM %q, want %q", file, blk.Type, typ)
		}
		return blk.Bytes, nil
	}
	return b, nil
}

func verifyEKCert(args []string) error {
	fs := flag.NewFlagSet("xenvtpm verify ekcert", flag.ContinueOnError)
	caFile := fs.String("ca", "", "the group's EK CA certificate (PEM or DER)")
	ekFile := fs.String("ek", "", "the EK public key it must certify (PEM or DER SubjectPublicKeyInfo)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "xenvtpm verify ekcert CERT --ca CA.pem [--ek EK.pem]"); err != nil {
		return err
	}
	if *caFile == "" {
		return errors.New("xenvtpm verify ekcert: --ca is required")
	}
	caDER, err := readPEMOrDER(*caFile, "CERTIFICATE")
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("%s: %w", *caFile, err)
	}
	var ek crypto.PublicKey
	if *ekFile != "" {
		der, err := readPEMOrDER(*ekFile, "PUBLIC KEY")
		if err != nil {
			return err
		}
		if ek, err = x509.ParsePKIXPublicKey(der); err != nil {
			return fmt.Errorf("%s: %w", *ekFile, err)
		}
	}
	der, err := readPEMOrDER(pos[0], "CERTIFICATE")
	if err != nil {
		return err
	}
	c, err := ekcert.Check(der, ca, ek)
	if err != nil {
		return fmt.Errorf("%s: NOT VERIFIED: %w", pos[0], err)
	}
	what := "its EK"
	if ek != nil {
		what = "the EK given (" + *ekFile + ")"
	}
	_, err = fmt.Fprintf(stdout, "%s: VERIFIED: EK certificate of %s, a TPM %s (specification level %d, revision %d), model %q (manufacturer %#08x, firmware %#08x), signed by %q\n",
		pos[0], what, c.Spec.Family, c.Spec.Level, c.Spec.Revision, c.Info.Model, c.Info.Manufacturer, c.Info.Version, ca.Subject.CommonName)
	return err
}
