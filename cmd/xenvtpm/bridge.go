package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/xenvtpm/xenvtpm/toolstack/bridge"
)

func runBridge(args []string) error {
	fs := flag.NewFlagSet("xenvtpm bridge", flag.ExitOnError)
	vtpmDomain := fs.String("vtpm", "", "the guest's vTPM domain (name or id)")
	socket := fs.String("socket", "", "Unix socket for QEMU's -chardev socket,path=...")
	verbose := fs.Bool("v", false, "log every control message from QEMU")
	fs.Parse(args)
	if *vtpmDomain == "" || *socket == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("--vtpm and --socket are required")
	}
	ctx, stop := signalContext()
	defer stop()
	a, err := attach(ctx, *vtpmDomain)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := bridge.Listen(bridge.Config{Link: a.dev, Socket: *socket, Logf: logf, Verbose: *verbose})
	if err != nil {
		return err
	}
	logf("bridge ready: QEMU's TPM at %s goes to vTPM domain %s", *socket, *vtpmDomain)
	err = b.Serve(ctx)
	st := b.Stats()
	logf("bridge stopped: %d QEMU connections, %d commands, %d guest resets, %d cancelled, %d failed",
		st.Connections, st.Commands, st.Resets, st.Cancelled, st.Failed)
	if err != nil {
		return fmt.Errorf("%w; the guest's TPM commands fail from now on (QEMU and the guest keep running)", err)
	}
	return nil
}
