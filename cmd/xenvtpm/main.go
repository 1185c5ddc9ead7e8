// Command xenvtpm is the project's dom0 command. It runs as root in dom0
// (the xen-evtchn and xen-gntalloc modules loaded) and reaches vTPM
// domains as a vtpm frontend of dom0's own (board/dom0,
// toolstack/vtpmdev).
//
//	xenvtpm bridge   --vtpm DOMAIN --socket PATH [-v]
//	    serve an HVM guest's QEMU TPM (-tpmdev emulator) from its vTPM
//	    domain until the vTPM domain goes away or a signal arrives
//	xenvtpm measure  --vtpm DOMAIN GUEST.cfg
//	xenvtpm measure  --vtpm DOMAIN --kernel FILE [--ramdisk FILE] [--cmdline STRING]
//	    reset the vTPM and extend a PV/PVH guest's kernel (PCR 4), command
//	    line and ramdisk (PCR 5) into it, before the guest is created
//	    (every PCR bank on a TPM 2.0; on a tpm=1.2 vTPM pv-grub's three
//	    SHA-1 TPM_Extends, the ramdisk's even when there is none)
//	xenvtpm up       --vtpm VTPM.cfg GUEST.cfg
//	    start the vTPM domain, then the bridge (HVM) or the measurement
//	    (PV/PVH), then the guest; follow the guest through reboots; tear
//	    everything down when it is gone
//	xenvtpm check-dm [--dm PATH | GUEST.cfg]
//	    tell whether the Xen device model can give a guest a TPM
//	xenvtpm group add --key SAA.pub | list | show ID | update ID SIGNED.cfg | del ID
//	    manage the manager's groups: register an SAA key (group 0's on a
//	    fresh manager), show a group, install a list of approved boot
//	    configurations its SAA signed (--manager DOMAIN, default vtpmmgr;
//	    --json)
//	xenvtpm vtpm add GROUP [--uuid UUID] | list [GROUP] | del UUID
//	    manage the vTPMs the manager keeps secrets for
//	xenvtpm saa keygen [--alg rsa|ecdsa] --out PREFIX
//	xenvtpm saa sign-config --key SAA.key --group-uuid UUID --seq N --family 1.2|2.0
//	        --pcrs LIST (--values FILE | --tpm DEVICE)... [--also OLD.cfg]... --out SIGNED.cfg
//	xenvtpm saa show-config SIGNED.cfg [--key SAA.pub]
//	    the System Approval Agent's tool: make its key, sign and inspect
//	    lists of approved boot configurations (no Xen needed)
//
// docs/hvm-guests.md explains the bridge and the xl configuration;
// docs/manager-groups.md the groups, the SAA and upgrades.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Version is set by the build.
var Version = "dev"

type command struct {
	run     func(args []string) error
	summary string
}

var commands = map[string]command{
	"bridge":    {runBridge, "serve an HVM guest's QEMU TPM from its vTPM domain"},
	"measure":   {runMeasure, "measure a PV/PVH guest's kernel, command line and ramdisk into its vTPM"},
	"up":        {runUp, "start vTPM domain, bridge or measurement, and guest; tear down when the guest is gone"},
	"check-dm":  {runCheckDM, "tell whether the device model can give a guest a TPM"},
	"group":     {runGroup, "manage the manager's groups and their signed configuration lists"},
	"vtpm":      {runVTPM, "manage the vTPMs the manager keeps secrets for"},
	"saa":       {runSAA, "make an SAA key; sign and show configuration lists"},
	"verify":    {runVerify, "check evidence from a vTPM: its EK certificate, a deep quote"},
	"deepquote": {runDeepQuote, "in a guest: get a deep quote from its vTPM"},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: xenvtpm COMMAND [options] (xenvtpm COMMAND -h for its options)\n\ncommands:\n")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", n, commands[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	if os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		return
	}
	if os.Args[1] == "version" {
		fmt.Println("xenvtpm", Version)
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "xenvtpm: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "xenvtpm %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// signalContext ends on SIGTERM or SIGINT.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// logf prints a timestamped line to stderr, the command's log.
func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "xenvtpm: "+format+"\n", a...)
}
