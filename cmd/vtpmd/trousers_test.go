package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTrouSerS points TrouSerS' tcsd at the daemon's swtpm data port
// (tcsd -e: a software TPM over TCP, TCSD_TCP_DEVICE_*) and runs
// tpm-tools against a TPM 1.2: tpm_version, tpm_getpubek,
// tpm_takeownership with the well-known secrets, tpm_sealdata /
// tpm_unsealdata round trips (a key made and loaded under the SRK, data
// sealed and bound under it; sealed to a PCR that then changes),
// tpm_selftest, tpm_setenable and tpm_setactive -s, tpm_changeownerauth,
// the NV tools and tpm_clear.
func TestTrouSerS(t *testing.T) {
	for _, bin := range []string{"tcsd", "tpm_version", "tpm_getpubek", "tpm_takeownership", "tpm_sealdata", "tpm_unsealdata",
		"tpm_selftest", "tpm_setenable", "tpm_setactive", "tpm_changeownerauth", "tpm_nvdefine", "tpm_nvwrite", "tpm_nvread",
		"tpm_nvinfo", "tpm_nvrelease", "tpm_clear"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skip("SKIP: TrouSerS or tpm-tools not installed (apt-get install trousers tpm-tools)")
		}
	}
	// tcsd insists on a configuration owned by root:tss and drops to
	// the tss user.
	tss, err := user.LookupGroup("tss")
	if os.Geteuid() != 0 || err != nil {
		t.Skip("SKIP: tcsd needs root and a tss group")
	}
	gid, _ := strconv.Atoi(tss.Gid)
	tssUser, err := user.Lookup("tss")
	if err != nil {
		t.Skip("SKIP: no tss user")
	}
	uid, _ := strconv.Atoi(tssUser.Uid)

	td := startDaemonFamily(t, t.TempDir(), family12)
	dc, err := net.Dial("tcp", td.swtpm)
	if err != nil {
		t.Fatal(err)
	}
	send := func(cmd []byte) []byte { t.Helper(); return rawCmd(t, dc, cmd) }
	ok12(t, send, cmd12(ord12Startup, u16(st12Clear)))
	pubek := ok12(t, send, cmd12(0x7C, make([]byte, 20))) // TPM_ReadPubek
	dc.Close()

	// t.TempDir's parent is closed to tss; this directory is not.
	dir, err := os.MkdirTemp("", "vtpmd-tcsd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ps := filepath.Join(dir, "ps")
	if err := os.Mkdir(ps, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ps, uid, gid); err != nil {
		t.Fatal(err)
	}
	tcsdPort := strconv.Itoa(freePort(t))
	conf := filepath.Join(dir, "tcsd.conf")
	if err := os.WriteFile(conf, []byte("port = "+tcsdPort+"\nsystem_ps_file = "+ps+"/system.data\n"+
		"firmware_log_file = /dev/null\nkernel_log_file = /dev/null\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(conf, 0, gid); err != nil {
		t.Fatal(err)
	}
	_, dataPort, _ := net.SplitHostPort(td.swtpm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tcsd := exec.CommandContext(ctx, "tcsd", "-f", "-e", "-c", conf)
	tcsd.Env = append(os.Environ(), "TCSD_TCP_DEVICE_HOSTNAME=127.0.0.1", "TCSD_TCP_DEVICE_PORT="+dataPort)
	var log strings.Builder
	tcsd.Stdout, tcsd.Stderr = &log, &log
	if err := tcsd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		tcsd.Wait()
		if t.Failed() {
			t.Logf("tcsd:\n%s", log.String())
		}
	}()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+tcsdPort)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("tcsd did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		c := exec.Command(name, args...)
		c.Env = append(os.Environ(), "TSS_TCSD_HOSTNAME=127.0.0.1", "TSS_TCSD_PORT="+tcsdPort)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("tpm_version")
	if !regexp.MustCompile(`Chip Version:\s+1\.2\.`).MatchString(out) || !strings.Contains(out, "TPM Vendor ID:") {
		t.Fatalf("tpm_version:\n%s", out)
	}
	out = run("tpm_getpubek")
	// The modulus tpm_getpubek prints, in groups of eight hex digits, is
	// the one TPM_ReadPubek gives over the daemon's own channel.
	i := strings.Index(out, "Public Key:")
	if i < 0 || !strings.Contains(out, "2048 bits") {
		t.Fatalf("tpm_getpubek:\n%s", out)
	}
	// (tpm_getpubek may print stray bytes after it.)
	words := regexp.MustCompile(`(?m)^\s+((?:[0-9a-f]{8} ?)+)$`).FindAllStringSubmatch(out[i:], -1)
	mod := ""
	for _, w := range words {
		mod += strings.ReplaceAll(strings.TrimSpace(w[1]), " ", "")
	}
	if len(mod) != 512 || !strings.Contains(hex.EncodeToString(pubek), mod) {
		t.Fatalf("tpm_getpubek's modulus %s is not in TPM_ReadPubek's answer", mod)
	}

	// Ownership with the well-known secrets (-y owner, -z SRK), then
	// tpm_sealdata: it makes a key under the SRK (TPM_CreateWrapKey),
	// loads it (TPM_LoadKey2), seals a symmetric key to it and encrypts
	// the file with that; tpm_unsealdata reverses it (TPM_Unseal,
	// TPM_UnBind).
	run("tpm_takeownership", "-y", "-z")
	plain := filepath.Join(dir, "plain")
	sealed := filepath.Join(dir, "sealed")
	back := filepath.Join(dir, "unsealed")
	secret := []byte("the vTPM sealed this under a key it made and loaded\n")
	if err := os.WriteFile(plain, secret, 0o644); err != nil {
		t.Fatal(err)
	}
	run("tpm_sealdata", "-z", "-i", plain, "-o", sealed)
	if b, err := os.ReadFile(sealed); err != nil || !strings.Contains(string(b), "-----BEGIN TSS-----") {
		t.Fatalf("tpm_sealdata output: %v\n%s", err, b)
	}
	run("tpm_unsealdata", "-z", "-i", sealed, "-o", back)
	if b, err := os.ReadFile(back); err != nil || string(b) != string(secret) {
		t.Fatalf("tpm_unsealdata gave %q (%v), want %q", b, err, secret)
	}

	// The rest of tpm-tools' owner's list. tpm_setenable and
	// tpm_setactive -s read the flags with TPM_GetCapabilityOwner.
	if out := run("tpm_selftest"); !strings.Contains(out, "TPM Test Results:") {
		t.Errorf("tpm_selftest:\n%s", out)
	}
	if out := run("tpm_setenable", "-s", "-z"); !strings.Contains(out, "Disabled status: false") {
		t.Errorf("tpm_setenable -s:\n%s", out)
	}
	if out := run("tpm_setactive", "-s", "-z"); !strings.Contains(out, "Persistent Deactivated Status: false") {
		t.Errorf("tpm_setactive -s:\n%s", out)
	}
	run("tpm_changeownerauth", "-o", "-z", "-r")
	nv := filepath.Join(dir, "nv")
	if err := os.WriteFile(nv, []byte("thirty-two bytes of NV data here"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("tpm_nvdefine", "-i", "0x11200", "-s", "32", "-p", "OWNERREAD|OWNERWRITE", "-y", "-z")
	run("tpm_nvwrite", "-i", "0x11200", "-z", "-f", nv)
	nvBack := filepath.Join(dir, "nv.back")
	run("tpm_nvread", "-i", "0x11200", "-s", "32", "-z", "-f", nvBack)
	if a, b := readFile(t, nv), readFile(t, nvBack); a != b {
		t.Errorf("tpm_nvread gave %q, wrote %q", b, a)
	}
	if out := run("tpm_nvinfo", "-i", "0x11200"); !strings.Contains(out, "OWNERREAD|OWNERWRITE") {
		t.Errorf("tpm_nvinfo:\n%s", out)
	}
	run("tpm_nvrelease", "-i", "0x11200", "-y")
	if out := run("tpm_nvinfo", "-i", "0x11200"); strings.Contains(out, "0x00011200") {
		t.Errorf("tpm_nvinfo after tpm_nvrelease:\n%s", out)
	}

	// Sealed to PCR 10, then PCR 10 extended: it no longer unseals.
	sealed10 := filepath.Join(dir, "sealed10")
	run("tpm_sealdata", "-z", "-p", "10", "-i", plain, "-o", sealed10)
	run("tpm_unsealdata", "-z", "-i", sealed10, "-o", back)
	// (tpm-tools has no extend tool: the test extends in the daemon.)
	change := sha1.Sum([]byte("PCR 10 changes"))
	ok12(t, func(cmd []byte) []byte { return td.d.process(cmd, 0) }, cmd12(ord12Extend, u32(10), change[:]))
	os.Remove(back)
	c := exec.Command("tpm_unsealdata", "-z", "-i", sealed10, "-o", back)
	c.Env = append(os.Environ(), "TSS_TCSD_HOSTNAME=127.0.0.1", "TSS_TCSD_PORT="+tcsdPort)
	c.CombinedOutput()
	if b, err := os.ReadFile(back); err == nil && len(b) > 0 {
		t.Errorf("data sealed to PCR 10 unsealed after PCR 10 changed: %q", b)
	}

	// tpm_clear with the owner's secret: the owner is gone.
	run("tpm_clear", "-z")
	c = exec.Command("tpm_setenable", "-s", "-z")
	c.Env = append(os.Environ(), "TSS_TCSD_HOSTNAME=127.0.0.1", "TSS_TCSD_PORT="+tcsdPort)
	if out, err := c.CombinedOutput(); err == nil {
		t.Errorf("tpm_setenable -s after tpm_clear (no owner) worked:\n%s", out)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
