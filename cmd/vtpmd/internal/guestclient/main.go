// Command guestclient is the TPM client the QEMU test (cmd/vtpmd
// qemu_test.go) runs inside a Linux guest: it talks to /dev/tpmrm0 (the
// kernel's resource manager in front of vtpmd) with go-tpm and prints one
// line per check, "OK <what>" or "FAIL <what>: <why>".
package main

import (
	"fmt"
	"os"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

func main() {
	dev := "/dev/tpmrm0"
	if len(os.Args) > 1 {
		dev = os.Args[1]
	}
	tpm, err := linuxtpm.Open(dev)
	if err != nil {
		fmt.Printf("FAIL open %s: %v\n", dev, err)
		os.Exit(1)
	}
	defer tpm.Close()
	failed := false
	check := func(what string, err error) {
		if err != nil {
			failed = true
			fmt.Printf("FAIL %s: %v\n", what, err)
			return
		}
		fmt.Printf("OK %s\n", what)
	}
	r, err := (gt.GetRandom{BytesRequested: 16}).Execute(tpm)
	if err == nil && len(r.RandomBytes.Buffer) != 16 {
		err = fmt.Errorf("%d bytes", len(r.RandomBytes.Buffer))
	}
	check("getrandom", err)
	_, err = (gt.PCRRead{PCRSelectionIn: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{
		{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(0, 1, 2, 3)}}}}).Execute(tpm)
	check("pcrread", err)
	cp, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tpm)
	check("createprimary", err)
	if err == nil {
		_, err = (gt.FlushContext{FlushHandle: cp.ObjectHandle}).Execute(tpm)
		check("flushcontext", err)
	}
	if failed {
		os.Exit(1)
	}
}
