package swtpmtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartVtpmd12 builds the project's cmd/vtpmd and starts it serving a
// TPM 1.2 over swtpm's data and control channels on a free port pair,
// left before TPM_Startup like Start12, so that benchmarks measure the
// daemon beside the engine in process and swtpm. It is stopped when the
// test ends.
func StartVtpmd12(t testing.TB) *Proc {
	t.Helper()
	bin, dir := BuildVtpmd(t)
	p := FreePortPair(t)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-family", "1.2", "-state", state, "-mssim", "",
		"-swtpm", "127.0.0.1:"+strconv.Itoa(p), "-swtpm-ctrl", "127.0.0.1:"+strconv.Itoa(p+1))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var err error
	for i := 0; i < 100; i++ {
		var c net.Conn
		if c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p+1)); err == nil {
			c.Close()
			return connect(t, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

// BuildVtpmd builds the project's cmd/vtpmd into a fresh temporary
// directory (removed when the test ends) and returns the binary and the
// directory, for tests that run the daemon as a separate process.
func BuildVtpmd(t testing.TB) (bin, dir string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "vtpmd")
	build := exec.Command("go", "build", "-o", bin, "github.com/xenvtpm/xenvtpm/cmd/vtpmd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/vtpmd: %v\n%s", err, out)
	}
	return bin, dir
}
