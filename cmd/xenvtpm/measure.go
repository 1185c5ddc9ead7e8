package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/toolstack/measure"
	"github.com/xenvtpm/xenvtpm/toolstack/xlcfg"
)

// bootFiles are what a PV/PVH guest boots with.
type bootFiles struct {
	kernel, ramdisk string
	cmdline         string
}

// bootData is the content of a guest's boot files.
type bootData struct {
	kernel, ramdisk []byte // ramdisk nil: none
	cmdline         string
}

func (b bootFiles) read() (bootData, error) {
	kernel, err := os.ReadFile(b.kernel)
	if err != nil {
		return bootData{}, fmt.Errorf("kernel: %w", err)
	}
	var ramdisk []byte
	if b.ramdisk != "" {
		if ramdisk, err = os.ReadFile(b.ramdisk); err != nil {
			return bootData{}, fmt.Errorf("ramdisk: %w", err)
		}
	}
	return bootData{kernel, ramdisk, b.cmdline}, nil
}

// components lists the measurements for a vTPM of family f (pv-grub's
// three on TPM 1.2).
func (d bootData) components(f measure.Family) []measure.Component {
	if f == measure.Family12 {
		return measure.BootPVGrub(d.kernel, d.cmdline, d.ramdisk)
	}
	return measure.Boot(d.kernel, d.cmdline, d.ramdisk)
}

// bootFilesOf reads a guest's boot files from its xl configuration.
func bootFilesOf(cfg *xlcfg.Config, path string) (bootFiles, error) {
	k, ok := cfg.Get("kernel")
	if !ok {
		return bootFiles{}, fmt.Errorf("%s has no kernel= (a guest booted by a boot loader in its own disk is not measured from dom0)", path)
	}
	r, _ := cfg.Get("ramdisk")
	return bootFiles{kernel: k, ramdisk: r, cmdline: cfg.Cmdline()}, nil
}

func readConfig(path string) (*xlcfg.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := xlcfg.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func runMeasure(args []string) error {
	fs := flag.NewFlagSet("xenvtpm measure", flag.ExitOnError)
	vtpmDomain := fs.String("vtpm", "", "the guest's vTPM domain (name or id)")
	var b bootFiles
	fs.StringVar(&b.kernel, "kernel", "", "the guest's kernel image (instead of GUEST.cfg)")
	fs.StringVar(&b.ramdisk, "ramdisk", "", "its initial ramdisk")
	fs.StringVar(&b.cmdline, "cmdline", "", "its command line")
	fs.Parse(args)
	switch {
	case *vtpmDomain == "":
		return errors.New("--vtpm is required")
	case fs.NArg() == 1 && b.kernel == "":
		cfg, err := readConfig(fs.Arg(0))
		if err != nil {
			return err
		}
		if b, err = bootFilesOf(cfg, fs.Arg(0)); err != nil {
			return err
		}
	case fs.NArg() == 0 && b.kernel != "":
	default:
		return errors.New("give either GUEST.cfg or --kernel (with --ramdisk, --cmdline)")
	}
	ctx, stop := signalContext()
	defer stop()
	a, err := attach(ctx, *vtpmDomain)
	if err != nil {
		return err
	}
	defer a.close()
	return measureBoot(a, b)
}

// measureBoot resets the vTPM and extends the boot files into it,
// printing each event.
func measureBoot(a *attachment, b bootFiles) error {
	// The files are read before the reset: a missing one leaves the vTPM
	// as it was.
	data, err := b.read()
	if err != nil {
		return err
	}
	tpm := a.dev.TPM(0)
	fam, err := measure.Reset(tpm)
	if err != nil {
		return err
	}
	comps := data.components(fam)
	var events []measure.Event
	if fam == measure.Family12 {
		events, err = measure.Extend12(tpm, comps)
	} else {
		events, err = measure.Extend(tpm, comps)
	}
	for _, e := range events {
		var algs []tpm2.TPMAlgID
		for alg := range e.Digests {
			algs = append(algs, alg)
		}
		sort.Slice(algs, func(i, j int) bool { return algs[i] < algs[j] })
		for _, alg := range algs {
			fmt.Printf("PCR %d %s %x %s\n", e.PCR, algName(alg), e.Digests[alg], e.What)
		}
	}
	if err != nil {
		return err
	}
	logf("measured the boot into vTPM domain %s (TPM %s): kernel %s, ramdisk %q, command line %q", a.name, fam, b.kernel, b.ramdisk, b.cmdline)
	return nil
}

func algName(a tpm2.TPMAlgID) string {
	switch a {
	case tpm2.TPMAlgSHA1:
		return "sha1"
	case tpm2.TPMAlgSHA256:
		return "sha256"
	case tpm2.TPMAlgSHA384:
		return "sha384"
	case tpm2.TPMAlgSHA512:
		return "sha512"
	}
	return fmt.Sprintf("alg%#x", uint16(a))
}
