// Command guestbench is the small static TPM client the hostile-frontend
// and HVM scenarios (build/hostilefront/testbed, cmd/xenvtpm/testbed-hvm)
// run inside their Linux guests. It writes raw TPM 2.0 commands (TPM 2.0 Part 3: TPM2_GetRandom,
// TPM2_PCR_Extend) to /dev/tpm0 and reads the responses, the way
// tpm2-tools' device TCTI does, because the stock xen-tpmfront registers the
// vTPM as a TPM 1.2 and only /dev/tpm0 exists.
//
//	guestbench bench N   time N of each command in-process against a fresh
//	                     emulator/tpm2 engine, then through /dev/tpm0, and
//	                     print FIGURE lines (p50, p90, p99) for both
//	guestbench probe     forever: one TPM2_GetRandom through /dev/tpm0 a
//	                     second, printing PROBE-OK n or PROBE-FAIL n
//
// Both sides of the figure run in the same guest, on the same (emulated)
// CPU, so their ratio is what the vTPM path costs over the engine itself.
//
// Run it with GODEBUG=asyncpreemptoff=1 (the scenario's guest-init does):
// the runtime's sysmon sends SIGURG to a thread that has been in one system
// call for more than 10 ms, and xen-tpmfront turns an interrupted wait for
// the response into -ETIME and cancels the command (seen on the test bed
// as "write /dev/tpm0: timer expired"). Sends that still fail that way are
// retried and counted.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
	"github.com/xenvtpm/xenvtpm/internal/tpmdev"
)

const device = "/dev/tpm0"

var (
	// TPM2_Startup(TPM_SU_CLEAR): only the in-process engine needs it; the
	// vTPM domain starts its TPM itself.
	startupCmd = []byte{0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0}
	// TPM2_GetRandom(bytesRequested=16).
	getRandomCmd = []byte{0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x10}
	// TPM2_PCR_Extend(PCR 16, one SHA-256 digest) with a password session
	// (TPM_RS_PW, empty auth): tag, size 65, code, handle, authorization
	// area size 9, session, then TPML_DIGEST_VALUES.
	pcrExtendCmd = func() []byte {
		b := []byte{0x80, 0x02, 0, 0, 0, 65, 0, 0, 0x01, 0x82, 0, 0, 0, 0x10,
			0, 0, 0, 9, 0x40, 0, 0, 0x09, 0, 0, 0, 0, 0,
			0, 0, 0, 1, 0, 0x0b}
		for i := 0; i < 32; i++ {
			b = append(b, byte(i))
		}
		return b
	}()
)

// rc checks a response's header and returns its response code.
func rc(rsp []byte) (uint32, error) {
	if len(rsp) < 10 {
		return 0, fmt.Errorf("%d-byte response, shorter than a header", len(rsp))
	}
	if n := binary.BigEndian.Uint32(rsp[2:]); int(n) != len(rsp) {
		return 0, fmt.Errorf("response header says %d bytes, got %d", n, len(rsp))
	}
	return binary.BigEndian.Uint32(rsp[6:]), nil
}

// transport sends one command and returns the response.
type transport func(cmd []byte) ([]byte, error)

// deviceTransport opens the TPM device (internal/tpmdev says why with
// plain system calls).
func deviceTransport() (transport, func(), error) {
	d, err := tpmdev.Open(device)
	if err != nil {
		return nil, nil, err
	}
	return d.Send, func() { d.Close() }, nil
}

// measure sends cmd n times and returns the sorted round-trip times of the
// successful sends, and how many sends timed out in the kernel (ETIME, the
// driver's answer to any interrupted wait) and were retried.
func measure(send transport, cmd []byte, n int) ([]time.Duration, int, error) {
	d := make([]time.Duration, 0, n)
	retried := 0
	for len(d) < n {
		t0 := time.Now()
		rsp, err := send(cmd)
		dt := time.Since(t0)
		if errors.Is(err, syscall.ETIME) && retried < 20 {
			retried++
			continue
		}
		if err != nil {
			return nil, retried, fmt.Errorf("command %d: %w", len(d), err)
		}
		if code, err := rc(rsp); err != nil || code != 0 {
			return nil, retried, fmt.Errorf("command %d: rc %#x, %v", len(d), code, err)
		}
		d = append(d, dt)
	}
	slices.Sort(d)
	return d, retried, nil
}

func pct(d []time.Duration, p int) time.Duration { return d[(len(d)-1)*p/100] }

func bench(n int) error {
	eng, err := tpm2.New(tpm2.Config{})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if code, err := rc(eng.Process(startupCmd, 0)); err != nil || code != 0 {
		return fmt.Errorf("engine TPM2_Startup: rc %#x, %v", code, err)
	}
	inproc := func(cmd []byte) ([]byte, error) { return eng.Process(cmd, 0), nil }
	dev, closeDev, err := deviceTransport()
	if err != nil {
		return err
	}
	defer closeDev()
	for _, c := range []struct {
		name string
		cmd  []byte
	}{{"TPM2_GetRandom(16)", getRandomCmd}, {"TPM2_PCR_Extend(16,sha256)", pcrExtendCmd}} {
		in, _, err := measure(inproc, c.cmd, n)
		if err != nil {
			return fmt.Errorf("in-process %s: %w", c.name, err)
		}
		out, retried, err := measure(dev, c.cmd, n)
		if err != nil {
			return fmt.Errorf("%s through %s: %w", c.name, device, err)
		}
		fmt.Printf("FIGURE %s in-process engine: p50 %v p90 %v p99 %v over %d\n", c.name, pct(in, 50), pct(in, 90), pct(in, 99), n)
		fmt.Printf("FIGURE %s guest %s: p50 %v p90 %v p99 %v over %d (%d sends retried after ETIME)\n", c.name, device, pct(out, 50), pct(out, 90), pct(out, 99), n, retried)
		fmt.Printf("FIGURE %s guest/in-process p50 ratio: %.1fx\n", c.name, float64(pct(out, 50))/float64(pct(in, 50)))
	}
	return nil
}

// probe shows, once a second, that the vTPM still serves this guest; the
// scenario checks for a PROBE-OK after each attack.
func probe() error {
	for i := 1; ; i++ {
		err := func() error {
			send, closeDev, err := deviceTransport()
			if err != nil {
				return err
			}
			defer closeDev()
			rsp, err := send(getRandomCmd)
			if err != nil {
				return err
			}
			if code, err := rc(rsp); err != nil || code != 0 {
				return fmt.Errorf("rc %#x, %v", code, err)
			}
			return nil
		}()
		if err != nil {
			fmt.Printf("PROBE-FAIL %d: %v\n", i, err)
		} else {
			fmt.Printf("PROBE-OK %d\n", i)
		}
		time.Sleep(time.Second)
	}
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "bench":
		n, cerr := strconv.Atoi(os.Args[2])
		if cerr != nil || n < 1 {
			err = fmt.Errorf("bench: bad count %q", os.Args[2])
			break
		}
		err = bench(n)
	case len(os.Args) == 2 && os.Args[1] == "probe":
		err = probe()
	default:
		err = errors.New("usage: guestbench bench N | probe")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "guestbench: %v\n", err)
		os.Exit(1)
	}
}
