//go:build linux

// Command tpmloop is the Linux side of the coexistence test: run in a Linux
// domU whose kernel drives the TPM with tpm_tis at locality 0, it sends
// GetRandom and PCR_Extend(16) pairs (the raw TPM 2.0 Part 3 / TPM 1.2 Main
// Part 3 commands of build/qemu-tis/benchcmd, byte-identical to what the Go
// domain sends) to /dev/tpm0 for a number of seconds while the Go domain
// works at locality 2, and reports every failed command, counting the ones
// the kernel refused as busy (EBUSY) apart. One static binary, so the guest
// needs no process per command.
//
// Console lines: GUEST-LOOP-START, GUEST-LOOP-PROGRESS n= fails= (once a
// second), GUEST-CMD-FAILED (the first 20), GUEST-LOOP-DONE n= fails= busy=
// p50_us= max_us= secs=.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/xenvtpm/xenvtpm/build/qemu-tis/benchcmd"
)

func main() {
	secs := flag.Int("secs", 60, "how long to loop")
	dev := flag.String("dev", "/dev/tpm0", "TPM character device")
	flag.Parse()

	family, err := os.ReadFile("/sys/class/tpm/tpm0/tpm_version_major")
	if err != nil {
		fmt.Println("GUEST-NO-TPM:", err)
		os.Exit(1)
	}
	tpm2 := len(family) > 0 && family[0] == '2'
	// A plain blocking descriptor: os.OpenFile would register the device
	// with the poller and set O_NONBLOCK, which changes /dev/tpm0 into
	// asynchronous mode (reads return 0 until the response is ready).
	fd, err := syscall.Open(*dev, syscall.O_RDWR, 0)
	if err != nil {
		fmt.Println("GUEST-NO-TPM:", err)
		os.Exit(1)
	}
	defer syscall.Close(fd)

	cmds := [][]byte{benchcmd.GetRandom(tpm2), benchcmd.Extend(tpm2, 16)}
	rsp := make([]byte, 4096)
	var lat []time.Duration
	n, fails, busy := 0, 0, 0
	fmt.Printf("GUEST-LOOP-START family=%s secs=%d\n", family[:1], *secs)
	start := time.Now()
	next := start.Add(time.Second)
	for time.Since(start) < time.Duration(*secs)*time.Second {
		for _, c := range cmds {
			n++
			t := time.Now()
			err := roundTrip(fd, c, rsp)
			if err != nil {
				fails++
				if errors.Is(err, syscall.EBUSY) {
					busy++
				}
				if fails <= 20 {
					fmt.Printf("GUEST-CMD-FAILED %d: %v\n", n, err)
				}
				continue
			}
			lat = append(lat, time.Since(t))
		}
		if time.Now().After(next) {
			fmt.Printf("GUEST-LOOP-PROGRESS n=%d fails=%d\n", n, fails)
			next = time.Now().Add(time.Second)
		}
	}
	slices.Sort(lat)
	p50, worst := int64(-1), int64(-1)
	if len(lat) > 0 {
		p50, worst = lat[len(lat)/2].Microseconds(), lat[len(lat)-1].Microseconds()
	}
	fmt.Printf("GUEST-LOOP-DONE n=%d fails=%d busy=%d p50_us=%d max_us=%d secs=%d\n", n, fails, busy, p50, worst, *secs)
}

// roundTrip writes one command and reads its response: /dev/tpm0 takes a
// whole command per write and returns the whole response on the next read.
func roundTrip(fd int, cmd, rsp []byte) error {
	if w, err := syscall.Write(fd, cmd); err != nil {
		return fmt.Errorf("write: %w", err)
	} else if w != len(cmd) {
		return fmt.Errorf("write: %d of %d bytes", w, len(cmd))
	}
	r, err := syscall.Read(fd, rsp)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return benchcmd.Check(rsp[:r])
}
