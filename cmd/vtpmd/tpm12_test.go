package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/swtpm"
)

// TPM 1.2 ordinals, tags and codes the tests send and check (TPM Main
// Part 2 rev 116).
const (
	tag12Command  = 0x00C1
	tag12Response = 0x00C4

	ord12Extend        = 0x14
	ord12PCRRead       = 0x15
	ord12GetCapability = 0x65
	ord12SaveState     = 0x98
	ord12Startup       = 0x99

	st12Clear = 1
	st12State = 2

	cap12VersionVal = 0x1A

	rc12Fail            = 0x09
	rc12InvalidPostinit = 0x26
)

// cmd12 is a TPM 1.2 command without authorization.
func cmd12(ord uint32, params ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tag12Command)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, ord)
	for _, p := range params {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// rc12 checks a TPM 1.2 response's framing and returns its code and
// output parameters.
func rc12(t testing.TB, rsp []byte) (uint32, []byte) {
	t.Helper()
	if len(rsp) < 10 || binary.BigEndian.Uint16(rsp) != tag12Response || int(binary.BigEndian.Uint32(rsp[2:])) != len(rsp) {
		t.Fatalf("not a TPM 1.2 response: % x", rsp)
	}
	return binary.BigEndian.Uint32(rsp[6:]), rsp[10:]
}

// ok12 sends cmd and requires TPM_SUCCESS.
func ok12(t testing.TB, send func([]byte) []byte, cmd []byte) []byte {
	t.Helper()
	rc, out := rc12(t, send(cmd))
	if rc != 0 {
		t.Fatalf("ordinal 0x%x: rc 0x%x", binary.BigEndian.Uint32(cmd[6:]), rc)
	}
	return out
}

// exercise12 runs TPM_Startup(CLEAR), GetCapability(VERSION_VAL),
// TPM_Extend and TPM_PCRRead through send and checks the values.
func exercise12(t *testing.T, send func([]byte) []byte) {
	t.Helper()
	ok12(t, send, cmd12(ord12Startup, u16(st12Clear)))
	// A second Startup: TPM_INVALID_POSTINIT (Part 3 §3.1).
	if rc, _ := rc12(t, send(cmd12(ord12Startup, u16(st12Clear)))); rc != rc12InvalidPostinit {
		t.Fatalf("second Startup: rc 0x%x", rc)
	}
	out := ok12(t, send, cmd12(ord12GetCapability, u32(cap12VersionVal), u32(0)))
	// respSize, then TPM_CAP_VERSION_INFO: tag TPM_TAG_CAP_VERSION_INFO,
	// TPM_VERSION 1.2.
	if len(out) < 10 || binary.BigEndian.Uint16(out[4:]) != 0x0030 || out[6] != 1 || out[7] != 2 {
		t.Fatalf("GetCapability(TPM_CAP_VERSION_VAL): % x", out)
	}
	m := sha1.Sum([]byte("measured"))
	out = ok12(t, send, cmd12(ord12Extend, u32(10), m[:]))
	want := sha1.Sum(append(make([]byte, 20), m[:]...))
	if !bytes.Equal(out, want[:]) {
		t.Fatalf("Extend outDigest %x, want %x", out, want)
	}
	if out = ok12(t, send, cmd12(ord12PCRRead, u32(10))); !bytes.Equal(out, want[:]) {
		t.Fatalf("PCRRead(10) %x, want %x", out, want)
	}
}

func mssimSend(t testing.TB, tpm transport.TPM) func([]byte) []byte {
	return func(cmd []byte) []byte {
		t.Helper()
		rsp, err := tpm.Send(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return rsp
	}
}

func TestTPM12Mssim(t *testing.T) {
	td := startDaemonFamily(t, t.TempDir(), family12)
	tpm := openMssim(t, td.mssim)
	defer tpm.Close()
	exercise12(t, mssimSend(t, tpm))
}

func TestTPM12Swtpm(t *testing.T) {
	td := startDaemonFamily(t, t.TempDir(), family12)
	cc, err := net.Dial("tcp", td.ctrl)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	caps := binary.BigEndian.Uint64(ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdGetCapability}, 8))
	want := uint64(swtpm.CapInit | swtpm.CapShutdown | swtpm.CapSetLocality | swtpm.CapSetBufferSize | swtpm.CapStop | swtpm.CapStoreVolatile)
	if caps&want != want {
		t.Fatalf("capabilities 0x%x lack 0x%x", caps, want)
	}
	success := []byte{0, 0, 0, 0}
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdInit, 0, 0, 0, 0}, 4); !bytes.Equal(got, success) {
		t.Fatalf("INIT: % x", got)
	}
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdSetLocality, 0}, 4); !bytes.Equal(got, success) {
		t.Fatalf("SET_LOCALITY: % x", got)
	}
	dc, err := net.Dial("tcp", td.swtpm)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	send := func(cmd []byte) []byte { t.Helper(); return rawCmd(t, dc, cmd) }
	exercise12(t, send)

	// QEMU's probe (tpm_util_test_tpmdev) sends TPM2_ReadClock and
	// takes a TPM 1.2 tag in the answer for a TPM 1.2.
	rsp := send([]byte{0x80, 0x01, 0, 0, 0, 0x0A, 0, 0, 0x01, 0x81})
	if binary.BigEndian.Uint16(rsp) != tag12Response {
		t.Fatalf("TPM 2.0 command: % x", rsp)
	}

	// PCR 16 (debug) resets at locality 0..4 with TPM_PCR_Reset; PCR 17
	// is for locality 4 (dynamic) only: SET_LOCALITY takes effect.
	m := sha1.Sum([]byte("x"))
	if rc, _ := rc12(t, send(cmd12(ord12Extend, u32(17), m[:]))); rc == 0 {
		t.Fatal("Extend(17) at locality 0 succeeded")
	}
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdSetLocality, 4}, 4); !bytes.Equal(got, success) {
		t.Fatalf("SET_LOCALITY 4: % x", got)
	}
	ok12(t, send, cmd12(ord12Extend, u32(17), m[:]))
	ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdSetLocality, 0}, 4)

	// CMD_STOP: commands fail with TPM_FAIL in a 1.2 answer; CMD_INIT
	// powers it on again, needing TPM_Startup.
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdStop}, 4); !bytes.Equal(got, success) {
		t.Fatalf("STOP: % x", got)
	}
	if rc, _ := rc12(t, send(cmd12(ord12PCRRead, u32(10)))); rc != rc12Fail {
		t.Fatalf("PCRRead after STOP: rc 0x%x", rc)
	}
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdInit, 0, 0, 0, 0}, 4); !bytes.Equal(got, success) {
		t.Fatalf("INIT: % x", got)
	}
	if rc, _ := rc12(t, send(cmd12(ord12PCRRead, u32(10)))); rc != rc12InvalidPostinit {
		t.Fatalf("PCRRead after INIT without Startup: rc 0x%x", rc)
	}
	ok12(t, send, cmd12(ord12Startup, u16(st12Clear)))
	if out := ok12(t, send, cmd12(ord12PCRRead, u32(10))); !bytes.Equal(out, make([]byte, 20)) {
		t.Fatalf("PCR 10 after INIT and Startup(CLEAR): %x", out)
	}
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdShutdown}, 4); !bytes.Equal(got, success) {
		t.Fatalf("SHUTDOWN: % x", got)
	}
	if _, err := os.Stat(filepath.Join(td.dir, family12.stateFile())); err != nil {
		t.Fatal(err)
	}
}

// TPM_SaveState, a daemon restart, TPM_Startup(ST_STATE): the PCRs are
// back; the endorsement key is the same.
func TestTPM12StatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	td := startDaemonFamily(t, dir, family12)
	tpm := openMssim(t, td.mssim)
	send := mssimSend(t, tpm)
	ok12(t, send, cmd12(ord12Startup, u16(st12Clear)))
	m := sha1.Sum([]byte("kernel"))
	pcr := ok12(t, send, cmd12(ord12Extend, u32(4), m[:]))
	nonce := make([]byte, 20)
	ek := ok12(t, send, cmd12(0x7C, nonce)) // TPM_ReadPubek
	ok12(t, send, cmd12(ord12SaveState))
	tpm.Close()
	if err := td.d.close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []family{family20, family12} {
		_, err := os.Stat(filepath.Join(dir, f.stateFile()))
		if (f == family12) != (err == nil) {
			t.Fatalf("%s after a 1.2 run: %v", f.stateFile(), err)
		}
	}

	td2 := startDaemonFamily(t, dir, family12)
	tpm2 := openMssim(t, td2.mssim)
	defer tpm2.Close()
	send = mssimSend(t, tpm2)
	ok12(t, send, cmd12(ord12Startup, u16(st12State)))
	if out := ok12(t, send, cmd12(ord12PCRRead, u32(4))); !bytes.Equal(out, pcr) {
		t.Fatalf("PCR 4 after restart and Startup(ST_STATE) = %x, want %x", out, pcr)
	}
	if out := ok12(t, send, cmd12(0x7C, nonce)); !bytes.Equal(out, ek) {
		t.Fatal("endorsement key changed across restart")
	}
}

// snapshot is a directory's files and their contents, but for the lock
// file every daemon creates.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range es {
		if e.Name() == lockFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A state directory of one family given to a daemon of the other is
// refused with one clear error and left as it was, whether the other
// family's file is there under its own name or its blob sits under this
// family's name.
func TestOtherFamilyStateRefused(t *testing.T) {
	for _, f := range []family{family20, family12} {
		t.Run(string(f), func(t *testing.T) {
			dir := t.TempDir()
			td := startDaemonFamily(t, dir, f.other())
			if err := td.d.close(); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			_, err := newDaemon(dir, f, false)
			if !errors.Is(err, errOtherFamily) || !strings.Contains(err.Error(), "TPM "+string(f.other())+" state") {
				t.Fatalf("-family %s on a %s state: %v", f, f.other(), err)
			}
			t.Logf("%v", err)
			if after := snapshot(t, dir); !sameSnapshot(before, after) {
				t.Fatal("state directory changed")
			}

			// The blob renamed to this family's file.
			dir2 := t.TempDir()
			blob := before[f.other().stateFile()]
			if err := os.WriteFile(filepath.Join(dir2, f.stateFile()), []byte(blob), 0o600); err != nil {
				t.Fatal(err)
			}
			before = snapshot(t, dir2)
			_, err = newDaemon(dir2, f, false)
			if !errors.Is(err, errOtherFamily) || !strings.Contains(err.Error(), "TPM "+string(f.other())+" state") {
				t.Fatalf("-family %s on a %s blob: %v", f, f.other(), err)
			}
			t.Logf("%v", err)
			if after := snapshot(t, dir2); !sameSnapshot(before, after) {
				t.Fatal("state directory changed")
			}
		})
	}
}

func TestParseFamily(t *testing.T) {
	for in, want := range map[string]family{"2.0": family20, "1.2": family12, "": "", "2": "", "1.1": ""} {
		got, err := parseFamily(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("parseFamily(%q) = %q, %v", in, got, err)
		}
	}
}
