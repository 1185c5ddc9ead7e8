// Command socketbench times the same raw commands the qemu-tis image sends
// through the TIS driver, sent straight to swtpm's data socket (swtpm's
// socket protocol: raw TPM command bytes in, raw response out, no framing),
// so run.sh can report the driver's latency against the TPM's own.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/xenvtpm/xenvtpm/build/qemu-tis/benchcmd"
)

func roundTrip(c net.Conn, cmd []byte) ([]byte, error) {
	if _, err := c.Write(cmd); err != nil {
		return nil, err
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, fmt.Errorf("reading response header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < 10 || size > 4096 {
		return nil, fmt.Errorf("response size %d", size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr)
	if _, err := io.ReadFull(c, rsp[10:]); err != nil {
		return nil, fmt.Errorf("reading response body: %w", err)
	}
	return rsp, nil
}

func bench(c net.Conn, name string, cmd []byte, n int) error {
	lat := make([]time.Duration, 0, n)
	var total time.Duration
	for range n {
		t := time.Now()
		rsp, err := roundTrip(c, cmd)
		if err == nil {
			err = benchcmd.Check(rsp)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		el := time.Since(t)
		lat = append(lat, el)
		total += el
	}
	slices.Sort(lat)
	fmt.Printf("SOCK-BENCH %s n=%d p50_us=%d mean_us=%d\n", name, n, lat[n/2].Microseconds(), (total / time.Duration(n)).Microseconds())
	return nil
}

func main() {
	path := flag.String("socket", "", "swtpm data socket (unix)")
	tpm2 := flag.Bool("tpm2", false, "TPM 2.0 commands (default TPM 1.2)")
	n := flag.Int("n", 200, "commands of each kind")
	flag.Parse()
	c, err := net.Dial("unix", *path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socketbench:", err)
		os.Exit(1)
	}
	defer c.Close()
	for _, b := range []struct {
		name string
		cmd  []byte
	}{
		{"getrandom32", benchcmd.GetRandom(*tpm2)},
		{"pcr_extend16", benchcmd.Extend(*tpm2, 16)},
	} {
		if err := bench(c, b.name, b.cmd, *n); err != nil {
			fmt.Fprintln(os.Stderr, "socketbench:", err)
			os.Exit(1)
		}
	}
}
