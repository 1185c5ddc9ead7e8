package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/xenvtpm/xenvtpm/toolstack/bridge"
	"github.com/xenvtpm/xenvtpm/toolstack/xlcfg"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// xl is the toolstack as `up` uses it; realXL runs the xl command.
type xl interface {
	// Create creates domain name from a configuration file. With leave,
	// xl does not stay behind to act on the domain's shutdown (xl create
	// -e): up does that itself.
	Create(ctx context.Context, cfg, name string, leave bool) error
	// State reports whether the domain exists, whether it has shut down
	// and, if so, the reason code (xl list -v: 0 poweroff, 1 reboot,
	// 2 suspend, 3 crash, 4 watchdog, 5 soft reset).
	State(ctx context.Context, name string) (exists, shutdown bool, reason int, err error)
	Destroy(ctx context.Context, name string) error
	// Shutdown asks the domain to shut down and waits for it.
	Shutdown(ctx context.Context, name string) error
}

type realXL struct{}

func (realXL) run(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "xl", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("xl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

func (x realXL) Create(ctx context.Context, cfg, name string, leave bool) error {
	args := []string{"create"}
	if leave {
		args = append(args, "-e")
	}
	_, err := x.run(ctx, append(args, cfg)...)
	if err != nil {
		// xl has been seen to fail after building the domain (a crash
		// of its own): what counts is whether the domain exists.
		if exists, _, _, serr := x.State(ctx, name); serr == nil && exists {
			logf("%v; domain %s exists all the same, carrying on", err, name)
			return nil
		}
	}
	return err
}

func (x realXL) State(ctx context.Context, name string) (bool, bool, int, error) {
	out, err := exec.CommandContext(ctx, "xl", "list", "-v", name).CombinedOutput()
	if err != nil {
		// xl list of a domain that does not exist fails and says so.
		if bytes.Contains(out, []byte("is an invalid domain identifier")) || bytes.Contains(out, []byte("not found")) {
			return false, false, 0, nil
		}
		return false, false, 0, fmt.Errorf("xl list -v %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return parseListV(out, name)
}

// parseListV reads the line of name in `xl list -v` output:
// Name ID Mem VCPUs State Time(s) UUID Reason-Code Security-Label.
func parseListV(out []byte, name string) (exists, shutdown bool, reason int, err error) {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != name {
			continue
		}
		state := f[4]
		if !strings.Contains(state, "s") {
			return true, false, 0, nil
		}
		r, err := strconv.Atoi(f[7])
		if err != nil {
			return true, true, -1, nil
		}
		return true, true, r, nil
	}
	return false, false, 0, fmt.Errorf("xl list -v: no line for %s in %q", name, out)
}

func (x realXL) Destroy(ctx context.Context, name string) error {
	_, err := x.run(ctx, "destroy", name)
	return err
}

func (x realXL) Shutdown(ctx context.Context, name string) error {
	_, err := x.run(ctx, "shutdown", "-w", name)
	return err
}

// Shutdown reason codes (xen/include/public/sched.h SHUTDOWN_*).
const (
	reasonPoweroff = 0
	reasonReboot   = 1
	reasonCrash    = 3
	reasonWatchdog = 4
	reasonSoftRst  = 5
)

// action is what the guest's configuration says to do on a shutdown
// (xl.cfg(5) on_poweroff, on_reboot, on_crash, on_watchdog,
// on_soft_reset; xl's defaults).
func action(cfg *xlcfg.Config, reason int) string {
	key, def := "on_poweroff", "destroy"
	switch reason {
	case reasonReboot:
		key, def = "on_reboot", "restart"
	case reasonCrash:
		key = "on_crash"
	case reasonWatchdog:
		key = "on_watchdog"
	case reasonSoftRst:
		key, def = "on_soft_reset", "soft-reset"
	}
	if v, ok := cfg.Get(key); ok {
		return v
	}
	return def
}

// hvmSocket finds the bridge's socket in an HVM guest's
// device_model_args_hvm: the path= of the -chardev the emulator -tpmdev
// names.
func hvmSocket(cfg *xlcfg.Config) (string, error) {
	args := cfg.List("device_model_args_hvm")
	chardevs := map[string]string{} // id → path
	var tpmChardev string
	hasDevice := false
	for i := 0; i+1 < len(args); i++ {
		opts := map[string]string{}
		kind, rest, _ := strings.Cut(args[i+1], ",")
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			opts[k] = v
		}
		switch args[i] {
		case "-chardev":
			if kind == "socket" {
				chardevs[opts["id"]] = opts["path"]
			}
		case "-tpmdev":
			if kind == "emulator" {
				tpmChardev = opts["chardev"]
			}
		case "-device":
			if kind == "tpm-tis" || kind == "tpm-crb" {
				hasDevice = true
			}
		}
	}
	path := chardevs[tpmChardev]
	if tpmChardev == "" || path == "" || !hasDevice {
		return "", errors.New(`device_model_args_hvm must give QEMU the TPM: [ "-chardev", "socket,id=chrtpm,path=/run/xenvtpm/GUEST.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0" ]`)
	}
	return path, nil
}

// guestPlan is what up does for one guest.
type guestPlan struct {
	vtpmCfg, guestCfg   string
	vtpmName, guestName string
	guest               *xlcfg.Config
	hvm                 bool
	socket              string    // HVM: the bridge's socket
	boot                bootFiles // PV/PVH: what is measured
	measure             bool
}

func planUp(vtpmCfgPath, guestCfgPath string) (*guestPlan, error) {
	vc, err := readConfig(vtpmCfgPath)
	if err != nil {
		return nil, err
	}
	gc, err := readConfig(guestCfgPath)
	if err != nil {
		return nil, err
	}
	p := &guestPlan{vtpmCfg: vtpmCfgPath, guestCfg: guestCfgPath, guest: gc}
	var ok bool
	if p.vtpmName, ok = vc.Get("name"); !ok {
		return nil, fmt.Errorf("%s has no name=", vtpmCfgPath)
	}
	if p.guestName, ok = gc.Get("name"); !ok {
		return nil, fmt.Errorf("%s has no name=", guestCfgPath)
	}
	switch t := gc.Type(); t {
	case "hvm":
		p.hvm = true
		if p.socket, err = hvmSocket(gc); err != nil {
			return nil, fmt.Errorf("%s: %w", guestCfgPath, err)
		}
	case "pv", "pvh":
		found := false
		for _, dev := range gc.List("vtpm") {
			for _, kv := range strings.Split(dev, ",") {
				if kv == "backend="+p.vtpmName {
					found = true
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: a %s guest reaches its vTPM through vtpm = [ \"backend=%s\" ]", guestCfgPath, t, p.vtpmName)
		}
		if _, hasKernel := gc.Get("kernel"); hasKernel {
			p.measure = true
			if p.boot, err = bootFilesOf(gc, guestCfgPath); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%s: unknown type %q", guestCfgPath, t)
	}
	return p, nil
}

func runUp(args []string) error {
	fs := flag.NewFlagSet("xenvtpm up", flag.ExitOnError)
	vtpmCfg := fs.String("vtpm", "", "the vTPM domain's xl configuration")
	fs.Parse(args)
	if *vtpmCfg == "" || fs.NArg() != 1 {
		return errors.New("usage: xenvtpm up --vtpm VTPM.cfg GUEST.cfg")
	}
	p, err := planUp(*vtpmCfg, fs.Arg(0))
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return up(ctx, realXL{}, p)
}

// up runs a guest with its vTPM until the guest is gone for good.
func up(ctx context.Context, x xl, p *guestPlan) (err error) {
	bg := context.WithoutCancel(ctx)
	exists, _, _, err := x.State(ctx, p.vtpmName)
	if err != nil {
		return err
	}
	startedVTPM := false
	if !exists {
		logf("starting vTPM domain %s (%s)", p.vtpmName, p.vtpmCfg)
		if err := x.Create(ctx, p.vtpmCfg, p.vtpmName, false); err != nil {
			return err
		}
		startedVTPM = true
	}
	defer func() {
		if startedVTPM {
			logf("shutting vTPM domain %s down", p.vtpmName)
			sctx, cancel := context.WithTimeout(bg, 2*time.Minute)
			if serr := x.Shutdown(sctx, p.vtpmName); serr != nil {
				logf("%v", serr)
			}
			cancel()
		}
	}()
	a, err := attach(ctx, p.vtpmName)
	if err != nil {
		return err
	}
	defer a.close()

	var bridgeStopped chan struct{} // closed when the bridge stops; never for PV
	var bridgeErr error
	if p.hvm {
		b, err := bridge.Listen(bridge.Config{Link: a.dev, Socket: p.socket, Logf: logf})
		if err != nil {
			return err
		}
		bctx, stopBridge := context.WithCancel(bg)
		bridgeStopped = make(chan struct{})
		go func() { bridgeErr = b.Serve(bctx); close(bridgeStopped) }()
		defer func() { stopBridge(); <-bridgeStopped }()
		logf("bridge ready at %s", p.socket)
	}
	releases, err := a.plat.Store.Watch(ctx, "@releaseDomain")
	if err != nil {
		return fmt.Errorf("watching for domains that end: %w", err)
	}
	defer releases.Unwatch(bg)

	for boot := 1; ; boot++ {
		if p.measure {
			if err := measureBoot(a, p.boot); err != nil {
				return err
			}
		}
		logf("creating guest %s (boot %d)", p.guestName, boot)
		if err := x.Create(ctx, p.guestCfg, p.guestName, true); err != nil {
			return err
		}
		reason, err := waitShutdown(ctx, x, p.guestName, releases, bridgeStopped)
		if errors.Is(err, errBridgeStopped) {
			return fmt.Errorf("%v; guest %s keeps running without its TPM", bridgeErr, p.guestName)
		}
		if err != nil {
			if ctx.Err() != nil {
				logf("stopping: shutting guest %s down", p.guestName)
				sctx, cancel := context.WithTimeout(bg, 5*time.Minute)
				if serr := x.Shutdown(sctx, p.guestName); serr != nil {
					logf("%v; destroying it", serr)
					x.Destroy(bg, p.guestName)
				}
				cancel()
				return nil
			}
			return err
		}
		if reason < 0 {
			logf("guest %s is gone", p.guestName)
			return nil
		}
		act := action(p.guest, reason)
		logf("guest %s shut down (reason %d): %s", p.guestName, reason, act)
		switch act {
		case "preserve":
			logf("leaving guest %s as it is (preserve); its vTPM stays up", p.guestName)
			startedVTPM = false
			return nil
		case "restart", "rename-restart", "coredump-restart", "soft-reset":
			if err := x.Destroy(ctx, p.guestName); err != nil {
				return err
			}
		default:
			return x.Destroy(ctx, p.guestName)
		}
	}
}

var errBridgeStopped = errors.New("the bridge stopped")

// waitShutdown waits until the guest has shut down (its reason) or is
// gone (-1). It checks the guest whenever a domain ends; the bridge
// stopping ends the wait too (errBridgeStopped).
func waitShutdown(ctx context.Context, x xl, name string, releases *xenbus.Watch, bridgeStopped <-chan struct{}) (int, error) {
	for {
		exists, shutdown, reason, err := x.State(ctx, name)
		switch {
		case err != nil:
			return 0, err
		case !exists:
			return -1, nil
		case shutdown:
			return reason, nil
		}
		select {
		case <-releases.Events():
		case <-bridgeStopped:
			return 0, errBridgeStopped
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
