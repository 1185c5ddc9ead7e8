package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DeviceModelPaths are where libxl looks for the qemu-xen device model:
// Debian's xen-utils, and upstream Xen's default.
var DeviceModelPaths = []string{"/usr/libexec/xen-qemu-system-i386", "/usr/lib/xen/bin/qemu-system-i386"}

// dmSupport is what a device model can do for a TPM.
type dmSupport struct {
	path               string
	tis, crb, emulator bool
}

func (s dmSupport) usable() bool { return s.tis && s.emulator }

// probeDM asks the device model which TPM devices and backends it has.
func probeDM(path string) (dmSupport, error) {
	s := dmSupport{path: path}
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, path, args...).CombinedOutput()
		return string(out)
	}
	if _, err := os.Stat(path); err != nil {
		return s, err
	}
	devices := run("-nodefaults", "-device", "help")
	s.tis = strings.Contains(devices, `"tpm-tis"`)
	s.crb = strings.Contains(devices, `"tpm-crb"`)
	backends := run("-nodefaults", "-tpmdev", "help")
	s.emulator = strings.Contains(backends, "emulator")
	return s, nil
}

func findDM(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	for _, p := range DeviceModelPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no device model at %s: install the qemu-xen device model (Debian: qemu-system-xen) or give --dm", strings.Join(DeviceModelPaths, " or "))
}

func runCheckDM(args []string) error {
	fs := flag.NewFlagSet("xenvtpm check-dm", flag.ExitOnError)
	dm := fs.String("dm", "", "the device model binary (default: where libxl looks, or GUEST.cfg's device_model_override)")
	fs.Parse(args)
	if fs.NArg() == 1 && *dm == "" {
		cfg, err := readConfig(fs.Arg(0))
		if err != nil {
			return err
		}
		*dm, _ = cfg.Get("device_model_override")
	} else if fs.NArg() != 0 {
		return errors.New("give at most one GUEST.cfg")
	}
	path, err := findDM(*dm)
	if err != nil {
		return err
	}
	s, err := probeDM(path)
	if err != nil {
		return err
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "device model: %s\n", path)
	fmt.Fprintf(&b, "  -tpmdev emulator (what the bridge serves): %s\n", yes(s.emulator))
	fmt.Fprintf(&b, "  -device tpm-tis: %s\n", yes(s.tis))
	fmt.Fprintf(&b, "  -device tpm-crb: %s (Xen 4.17's hvmloader gives a guest no ACPI table for it: use tpm-tis)\n", yes(s.crb))
	os.Stdout.Write(b.Bytes())
	if !s.usable() {
		return errors.New("this device model cannot give a guest a TPM: it was built without TPM support (Debian 12's qemu-system-xen is); see the README's \"HVM guests\" section for building one with --enable-tpm")
	}
	fmt.Println("usable: yes")
	return nil
}
