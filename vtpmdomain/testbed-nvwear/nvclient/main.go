// Command nvclient is the static TPM 2.0 client the NV wear scenario
// (vtpmdomain/testbed-nvwear) runs in its two Linux guests, through
// /dev/tpm0 (stock xen-tpmfront registers the vTPM as a TPM 1.2, so only
// that device exists), with go-tpm's commands.
//
//	nvclient good START QUIET ATTACK LEN PERIOD
//	    the well-behaved guest: from START (Unix seconds, the wall clock
//	    every domain gets from Xen) one TPM2_NV_Write every PERIOD
//	    (e.g. 2.5s) for QUIET seconds, then from ATTACK for LEN seconds;
//	    prints the writes' latency (p50, p99, max) per phase. A write
//	    answered TPM_RC_NV_RATE or another "retry later" warning is retried
//	    (what a TSS does) and its latency includes the retries; any other
//	    failure is a refusal (GOOD-REFUSED).
//	nvclient hostile FROM SECS
//	    the hostile guest: for SECS seconds from FROM (or from when it is
//	    ready, if later: a slow test bed), as fast as it can, in turn
//	    TPM2_Shutdown(CLEAR), TPM2_NV_Write and TPM2_NV_Read with a wrong
//	    password on a noDA index; prints what it achieved.
//
// Markers for dom0: NVCLIENT-READY, GOOD-WRITE, GOOD-REFUSED, FIGURE,
// NVCLIENT-DONE, NVCLIENT-FAIL. Run it with GODEBUG=asyncpreemptoff=1 (see
// build/hostilefront/guestbench: a signal during a TPM read makes
// xen-tpmfront cancel the command).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/internal/tpmdev"
)

const device = "/dev/tpm0"

// The guests' NV indices (owner range, TPM 2.0 Part 2 handle registry).
const (
	goodIndex    = 0x01500020 // the well-behaved guest's 32-byte index
	hostileIndex = 0x01500021 // the hostile guest's 32-byte index
	noDAIndex    = 0x01500022 // noDA, with a password, for failed attempts
)

// dev is /dev/tpm0 opened with plain blocking system calls (see
// internal/tpmdev for why). A command the
// kernel cancels with ETIME is sent again.
type dev struct {
	d       *tpmdev.Dev
	retried int
}

func openDev() (*dev, error) {
	d, err := tpmdev.Open(device)
	if err != nil {
		return nil, err
	}
	return &dev{d: d}, nil
}

func (d *dev) Send(cmd []byte) ([]byte, error) {
	for tries := 0; ; tries++ {
		rsp, err := d.d.Send(cmd)
		if errors.Is(err, syscall.ETIME) && tries < 20 {
			d.retried++
			continue
		}
		if err != nil {
			return nil, err
		}
		return bytes.Clone(rsp), nil
	}
}

var _ transport.TPM = (*dev)(nil)

// retryLater: the warnings a TSS retries (TPM 2.0 Part 2, 6.6.3).
func retryLater(err error) bool {
	for _, rc := range []tpm2.TPMRC{tpm2.TPMRCNVRate, tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting} {
		if errors.Is(err, rc) {
			return true
		}
	}
	return false
}

// define makes an NV index unless it is there, and returns its name.
func define(tpm transport.TPM, index tpm2.TPMHandle, attrs tpm2.TPMANV, auth []byte) (tpm2.TPM2BName, error) {
	_, err := tpm2.NVDefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		Auth:       tpm2.TPM2BAuth{Buffer: auth},
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: index, NameAlg: tpm2.TPMAlgSHA256, Attributes: attrs, DataSize: 32}),
	}.Execute(tpm)
	if err != nil && !errors.Is(err, tpm2.TPMRCNVDefined) {
		return tpm2.TPM2BName{}, fmt.Errorf("TPM2_NV_DefineSpace(%#x): %w", index, err)
	}
	return nameOf(tpm, index)
}

func nameOf(tpm transport.TPM, index tpm2.TPMHandle) (tpm2.TPM2BName, error) {
	rsp, err := tpm2.NVReadPublic{NVIndex: index}.Execute(tpm)
	if err != nil {
		return tpm2.TPM2BName{}, fmt.Errorf("TPM2_NV_ReadPublic(%#x): %w", index, err)
	}
	return rsp.NVName, nil
}

func nvWrite(tpm transport.TPM, index tpm2.TPMHandle, name tpm2.TPM2BName, data []byte) error {
	_, err := tpm2.NVWrite{
		AuthHandle: tpm2.AuthHandle{Handle: index, Name: name, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: index, Name: name},
		Data:       tpm2.TPM2BMaxNVBuffer{Buffer: data},
	}.Execute(tpm)
	return err
}

func data(i int) []byte {
	b := make([]byte, 32)
	copy(b, strconv.Itoa(i))
	return b
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[(len(d)-1)*p/100]
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func unix(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	return time.Unix(n, 0), err
}

// good is the well-behaved guest.
func good(tpm transport.TPM, args []string) error {
	if len(args) != 5 {
		return errors.New("usage: nvclient good START QUIET ATTACK LEN PERIOD")
	}
	start, err1 := unix(args[0])
	quiet, err2 := strconv.Atoi(args[1])
	attack, err3 := unix(args[2])
	length, err4 := strconv.Atoi(args[3])
	period, err5 := time.ParseDuration(args[4])
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return err
	}
	name, err := define(tpm, goodIndex, tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, AuthWrite: true, AuthRead: true}, nil)
	if err != nil {
		return err
	}
	if err := nvWrite(tpm, goodIndex, name, data(0)); err != nil {
		return fmt.Errorf("first TPM2_NV_Write: %w", err)
	}
	if name, err = nameOf(tpm, goodIndex); err != nil { // written: its name changed
		return err
	}
	fmt.Printf("NVCLIENT-READY good: quiet phase starts in %.1fs\n", time.Until(start).Seconds())
	refused := 0
	seq := 1
	phase := func(label string, from time.Time, secs int) {
		var lat []time.Duration
		retried := 0
		end := from.Add(time.Duration(secs) * time.Second)
		sleepUntil(from)
		for next := time.Now(); next.Before(end); next = next.Add(period) {
			if late := time.Since(next); late > period {
				next = next.Add(late.Truncate(period)) // a slot missed is skipped, not made up
			}
			sleepUntil(next)
			t0 := time.Now()
			backoff := 50 * time.Millisecond
			var err error
			for {
				err = nvWrite(tpm, goodIndex, name, data(seq))
				if !retryLater(err) {
					break
				}
				retried++
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
			}
			dt := time.Since(t0)
			seq++
			if err != nil {
				refused++
				fmt.Printf("GOOD-REFUSED %s write %d after %v: %v\n", label, seq, dt.Round(time.Millisecond), err)
				continue
			}
			lat = append(lat, dt)
			fmt.Printf("GOOD-WRITE %s %d %dus\n", label, seq, dt.Microseconds())
		}
		slices.Sort(lat)
		fmt.Printf("FIGURE well-behaved guest NV write latency %s: p50 %v p99 %v max %v over %d writes, one every %v (%d retries after TPM_RC_NV_RATE/RETRY)\n",
			label, pct(lat, 50).Round(time.Microsecond), pct(lat, 99).Round(time.Microsecond), pct(lat, 100).Round(time.Microsecond), len(lat), period, retried)
	}
	phase("quiet", start, quiet)
	phase("under attack", attack, length)
	fmt.Printf("GOOD-RESULT refused %d\n", refused)
	return nil
}

// hostile is the guest that tries to wear the hardware out.
func hostile(tpm transport.TPM, args []string) error {
	if len(args) != 2 {
		return errors.New("usage: nvclient hostile FROM SECS")
	}
	from, err1 := unix(args[0])
	secs, err2 := strconv.Atoi(args[1])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	name, err := define(tpm, hostileIndex, tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, AuthWrite: true, AuthRead: true}, nil)
	if err != nil {
		return err
	}
	noDA, err := define(tpm, noDAIndex, tpm2.TPMANV{OwnerWrite: true, AuthRead: true, AuthWrite: true, NoDA: true}, []byte("right"))
	if err != nil {
		return err
	}
	fmt.Printf("NVCLIENT-READY hostile: flood starts in %.1fs\n", time.Until(from).Seconds())
	sleepUntil(from)
	var cycles, shutdowns, writes, rated, badAuth, other int
	var lastErr error
	t0 := time.Now()
	until := t0.Add(time.Duration(secs) * time.Second)
	for time.Now().Before(until) {
		cycles++
		if _, err := (tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}).Execute(tpm); err == nil {
			shutdowns++
		} else {
			other, lastErr = other+1, fmt.Errorf("TPM2_Shutdown: %w", err)
		}
		switch err := nvWrite(tpm, hostileIndex, name, data(cycles)); {
		case err == nil:
			writes++
			if writes == 1 {
				name, _ = nameOf(tpm, hostileIndex)
			}
		case retryLater(err):
			rated++
		default:
			other, lastErr = other+1, fmt.Errorf("TPM2_NV_Write: %w", err)
		}
		_, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: noDAIndex, Name: noDA, Auth: tpm2.PasswordAuth([]byte("wrong"))},
			NVIndex:    tpm2.NamedHandle{Handle: noDAIndex, Name: noDA},
			Size:       32,
		}.Execute(tpm)
		switch {
		case errors.Is(err, tpm2.TPMRCBadAuth), errors.Is(err, tpm2.TPMRCAuthFail):
			badAuth++
		case err == nil:
			other, lastErr = other+1, errors.New("TPM2_NV_Read with a wrong password succeeded")
		default:
			other, lastErr = other+1, fmt.Errorf("TPM2_NV_Read, wrong password: %w", err)
		}
	}
	took := time.Since(t0).Seconds()
	fmt.Printf("FIGURE hostile guest: %d rounds in %.0fs (%.1f commands/s): %d TPM2_Shutdown(CLEAR), %d failed noDA passwords, %d NV writes saved (%.1f per minute), %d answered TPM_RC_NV_RATE\n",
		cycles, took, float64(3*cycles)/took, shutdowns, badAuth, writes, float64(writes)*60/took, rated)
	if other > 0 {
		fmt.Printf("HOSTILE-UNEXPECTED %d answers, the last: %v\n", other, lastErr)
	}
	return nil
}

func main() {
	var err error
	var d *dev
	if len(os.Args) > 1 && (os.Args[1] == "good" || os.Args[1] == "hostile") {
		d, err = openDev()
	}
	switch {
	case err != nil:
	case len(os.Args) > 1 && os.Args[1] == "good":
		err = good(d, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "hostile":
		err = hostile(d, os.Args[2:])
	default:
		err = errors.New("usage: nvclient good START QUIET ATTACK LEN PERIOD | hostile FROM SECS")
	}
	if d != nil && d.retried > 0 {
		fmt.Printf("NVCLIENT %d sends repeated after ETIME\n", d.retried)
	}
	if err != nil {
		fmt.Printf("NVCLIENT-FAIL %v\n", err)
		os.Exit(1)
	}
	fmt.Println("NVCLIENT-DONE")
}
