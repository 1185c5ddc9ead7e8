//go:build tamago

// Command tisxen proves drivers/tpmtis through Xen's iomem passthrough: a
// PVH domU given the TCG PC Client FIFO pages (TIS 1.3 / PC Client PTP FIFO,
// xl `iomem=["fed40,5"]`) drives the TPM behind them at the locality it is
// told, with the checks of build/tischeck that the plain-QEMU proof
// (build/qemu-tis) also runs. The test bed's scenarios in testbed/ and
// testbed-tpm12/ read its console.
//
// Its options (xl extra=), named and defaulted as Xen's vtpmmgr names them
// so a manager's xl config carries over, are declared in
// build/tisxen/options and documented in docs/options.md.
//
// Console protocol: "CHECK <name> OK|FAIL: ...", "TIS-..." detail and
// figure lines (see build/tischeck), "TIS-LOAD ..." in load mode, and last
// "TIS-RESULT PASS|FAIL". The domain powers off (exit 0) on PASS and
// crashes (exit 1) on FAIL, so xl's on_poweroff/on_crash tell them apart.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/xenvtpm/xenvtpm/build/qemu-tis/benchcmd"
	"github.com/xenvtpm/xenvtpm/build/tischeck"
	"github.com/xenvtpm/xenvtpm/build/tisxen/options"
	"github.com/xenvtpm/xenvtpm/domain"
	"github.com/xenvtpm/xenvtpm/drivers/tpmtis"
)

// Version is set by the build.
var Version = "dev"

var (
	dom *domain.Domain
	run = &tischeck.Run{Out: os.Stdout, Clock: spinClock{}}
)

// spinClock is the drivers' clock: it waits by spinning on the Xen clock
// and yielding to other goroutines instead of calling time.Sleep. The
// board's idle path (board/xen/pvh) can halt the vCPU for good when a sleep
// is so short that its deadline has passed by the time the one-shot timer
// is armed (seen on the test bed: time.Sleep(100µs) in a loop never
// returned, 1 ms sleeps did), and the driver polls TPM_STS every 20 µs.
// A polling driver on its own vCPU loses nothing by spinning.
type spinClock struct{}

func (spinClock) Now() time.Time { return time.Now() }

func (spinClock) Sleep(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		runtime.Gosched()
	}
}

func main() {
	dom = domain.Start("tisxen", options.Spec())
	base, _ := strconv.ParseUint(dom.Config.Get("tpmiomem"), 0, 64)
	loc, _ := strconv.Atoi(dom.Config.Get("tpmlocality"))
	loops, _ := strconv.Atoi(dom.Config.Get("loops"))
	run.BenchN = loops
	dom.Log.Infof("xenvtpm tisxen %s on Xen %d.%d: domid=%d tpmiomem=0x%x tpmlocality=%d mode=%s loops=%d",
		Version, dom.Xen.Major, dom.Xen.Minor, dom.ID, base, loc, dom.Config.Get("mode"), loops)

	cfg := tpmtis.Config{Base: base, Locality: loc, Clock: spinClock{}}
	start := time.Now()
	d, err := tpmtis.Open(cfg)
	if !run.Check(fmt.Sprintf("open-locality-%d", loc), err) {
		finish()
	}
	// The time since the logger started is on the line; the figure is
	// the driver's own identification (registers + probe command).
	dom.Log.Infof("TIS-FIRST-RESULT driver identified the TPM in %v", time.Since(start).Round(time.Microsecond))
	in := run.Info(d)
	if in.Family == tpmtis.FamilyUnknown {
		run.Check("family", errors.New("family unknown"))
		finish()
	}

	if dom.Config.Get("mode") == "load" {
		load(d, loops, in.Family == tpmtis.Family20)
		finish()
	}

	peerLoc := 2
	if loc == 2 {
		peerLoc = 0
	}
	peer, err := tpmtis.Open(tpmtis.Config{Base: base, Locality: peerLoc, Clock: spinClock{}})
	if !run.Check(fmt.Sprintf("open-locality-%d", peerLoc), err) {
		finish()
	}
	env := tischeck.Env{Main: d, Peer: peer, Config: &cfg}
	switch in.Family {
	case tpmtis.Family20:
		run.TPM20(env)
	case tpmtis.Family12:
		run.TPM12(env)
	}
	run.Concurrent(d, peer, in.Family == tpmtis.Family20)
	// Locality 4's page is inside the five mapped ones; 0x40000 past the
	// base is outside them, where Xen answers reads with all ones.
	if loc != 4 {
		run.Faults(base, base+0x40000)
	}
	st := d.Stats()
	run.Printf("TIS-STATS locality=%d commands=%d accesses=%d retries=%d busy_waits=%d aborts=%d\n",
		loc, st.Commands, st.Accesses, st.Retries, st.BusyWaits, st.Aborts)
	finish()
}

// load sends n GetRandom + PCR_Extend(16) pairs at our locality only, as
// the Go side of the coexistence test: another OS drives locality 0 at the
// same time, so our locality requests queue behind its commands (counted as
// busy waits) and none may fail.
func load(d *tpmtis.TPM, n int, tpm2 bool) {
	cmds := [][]byte{benchcmd.GetRandom(tpm2), benchcmd.Extend(tpm2, 16)}
	lat := [2][]time.Duration{}
	st0 := d.Stats()
	failed := 0
	var first error
	start := time.Now()
	dom.Log.Infof("TIS-LOAD-START pairs=%d", n)
	for i := range n {
		for k, c := range cmds {
			t := time.Now()
			if err := tischeck.SendChecked(d, c); err != nil {
				failed++
				if first == nil {
					first = fmt.Errorf("pair %d command %d: %w", i, k, err)
				}
				continue
			}
			lat[k] = append(lat[k], time.Since(t))
		}
	}
	el := time.Since(start)
	st := d.Stats()
	p50 := func(l []time.Duration) int64 {
		if len(l) == 0 {
			return -1
		}
		slices.Sort(l)
		return l[len(l)/2].Microseconds()
	}
	worst := func(l []time.Duration) int64 { // after p50 sorted it
		if len(l) == 0 {
			return -1
		}
		return l[len(l)-1].Microseconds()
	}
	cmdsSent := st.Commands - st0.Commands
	run.Printf("TIS-LOAD commands=%d failed=%d busy_waits=%d retries=%d aborts=%d p50_getrandom_us=%d p50_extend_us=%d max_getrandom_us=%d max_extend_us=%d mmio_per_cmd=%.1f elapsed_ms=%d\n",
		2*n, failed, st.BusyWaits-st0.BusyWaits, st.Retries-st0.Retries, st.Aborts-st0.Aborts,
		p50(lat[0]), p50(lat[1]), worst(lat[0]), worst(lat[1]),
		float64(st.Accesses-st0.Accesses)/float64(max(cmdsSent, 1)), el.Milliseconds())
	if failed > 0 {
		run.Check("load", fmt.Errorf("%d of %d commands failed, first: %v", failed, 2*n, first))
		return
	}
	run.Check("load", nil)
}

func finish() {
	if run.Failed() {
		fmt.Printf("TIS-RESULT FAIL %v\n", run.Failures)
		dom.Exit(1)
	}
	fmt.Println("TIS-RESULT PASS")
	dom.Exit(0)
}
