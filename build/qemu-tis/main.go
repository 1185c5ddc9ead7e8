//go:build tamago

// Command qemu-tis is a test image for plain QEMU (q35, TCG): it drives the
// TPM behind QEMU's tpm-tis device (TCG PC Client FIFO interface at
// 0xFED40000, backed by swtpm) with drivers/tpmtis and runs the checks of
// build/tischeck: the family found, GetRandom, PCR read, extends at
// localities 0 and 2 (PCR 21 may only be extended from locality 2 under the
// PC Client profile), and, for TPM 2.0, CreatePrimary + Quote verified in
// Go; TPM 1.2 goes through go-tpm's legacy tpm package. It then times
// GetRandom and PCR_Extend through the driver, runs localities 0 and 2
// concurrently, and checks that locality 4 and an address without a TPM
// fail cleanly. Every result is a line on COM1 that run.sh checks; the last
// line is "TIS-RESULT PASS" or "TIS-RESULT FAIL".
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/xenvtpm/xenvtpm/board/qemu/q35"
	"github.com/xenvtpm/xenvtpm/build/tischeck"
	"github.com/xenvtpm/xenvtpm/drivers/tpmtis"
)

var run = &tischeck.Run{Out: os.Stdout, BenchN: 200}

func main() {
	fmt.Printf("TIS-BOOT tsc_hz=%d\n", q35.TSCFreq)

	// The host timestamps these two lines to check the guest clock.
	fmt.Println("TIME-MARK 0")
	time.Sleep(time.Second)
	fmt.Println("TIME-MARK 1")

	cfg0 := tpmtis.Config{Locality: 0}
	d0, err := tpmtis.Open(cfg0)
	if !run.Check("open-locality-0", err) {
		finish()
	}
	in := run.Info(d0)

	d2, err := tpmtis.Open(tpmtis.Config{Locality: 2})
	if !run.Check("open-locality-2", err) {
		finish()
	}

	env := tischeck.Env{Main: d0, Peer: d2, Config: &cfg0}
	switch in.Family {
	case tpmtis.Family20:
		run.TPM20(env)
	case tpmtis.Family12:
		run.TPM12(env)
	}
	run.Concurrent(d0, d2, in.Family == tpmtis.Family20)
	run.Faults(tpmtis.DefaultBase, 0xFED80000)
	finish()
}

func finish() {
	if run.Failed() {
		fmt.Printf("TIS-RESULT FAIL %v\n", run.Failures)
		q35.Exit(1)
	}
	fmt.Println("TIS-RESULT PASS")
	q35.Exit(0)
}
