package main

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/swtpm"
)

// TestTPM12ControlMatchesSwtpm drives vtpmd -family 1.2 and Debian's
// swtpm in TPM 1.2 mode through the same sequence of control requests
// (CMD_INIT, CMD_STOP, CMD_SET_LOCALITY, CMD_GET_TPMESTABLISHED) and TPM 1.2 commands, and requires the same
// control results, response codes and PCR values. CMD_STORE_VOLATILE is
// left out: swtpm keeps the whole volatile state then and its next
// CMD_INIT resumes it (the TPM answers as started, PCRs as they were),
// which the daemon does not offer (it stores the durable state only).
func TestTPM12ControlMatchesSwtpm(t *testing.T) {
	td := startDaemonFamily(t, t.TempDir(), family12)
	ours := runControlScript12(t, td.swtpm, td.ctrl)
	p := swtpmtest.Serve12(t)
	theirs := runControlScript12(t, "127.0.0.1:"+strconv.Itoa(p), "127.0.0.1:"+strconv.Itoa(p+1))
	if ours != theirs {
		t.Fatalf("vtpmd:\n%s\nswtpm:\n%s", ours, theirs)
	}
	t.Logf("\n%s", ours)
}

func runControlScript12(t *testing.T, data, control string) string {
	t.Helper()
	dc, err := net.Dial("tcp", data)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	cc, err := net.Dial("tcp", control)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var out strings.Builder
	ctl := func(name string, req []byte, n int) {
		rsp := ctrl(t, cc, req, n)
		fmt.Fprintf(&out, "%s: result %#x\n", name, binary.BigEndian.Uint32(rsp))
	}
	cmd := func(name string, c []byte) {
		rsp := rawCmd(t, dc, c)
		fmt.Fprintf(&out, "%s: tag %#x rc %#x", name, binary.BigEndian.Uint16(rsp), binary.BigEndian.Uint32(rsp[6:]))
		if binary.BigEndian.Uint32(rsp[6:]) == 0 && len(rsp) > 10 {
			fmt.Fprintf(&out, " %x", rsp[10:])
		}
		out.WriteString("\n")
	}
	startup := func(st uint16) []byte { return cmd12(ord12Startup, u16(st)) }
	m := sha1.Sum([]byte("control"))
	loc := func(l byte) []byte { return []byte{0, 0, 0, swtpm.CmdSetLocality, l} }
	init := []byte{0, 0, 0, swtpm.CmdInit, 0, 0, 0, 0}

	cmd("PCRRead before Startup", cmd12(ord12PCRRead, u32(10)))
	cmd("Startup(CLEAR)", startup(st12Clear))
	cmd("Extend(10)", cmd12(ord12Extend, u32(10), m[:]))
	cmd("Extend(17) at 0", cmd12(ord12Extend, u32(17), m[:]))
	ctl("SET_LOCALITY 4", loc(4), 4)
	cmd("Extend(17) at 4", cmd12(ord12Extend, u32(17), m[:]))
	ctl("SET_LOCALITY 5", loc(5), 4)
	ctl("SET_LOCALITY 0", loc(0), 4)
	ctl("GET_TPMESTABLISHED", []byte{0, 0, 0, swtpm.CmdGetTPMEstablished}, 8)
	cmd("SaveState", cmd12(ord12SaveState))
	// Between SaveState and Startup(ST_STATE) no other command: the
	// engine drops what SaveState kept on any ordinal, even one answered
	// TPM_INVALID_POSTINIT before Startup, where libtpms keeps it.
	ctl("INIT", init, 4)
	cmd("Startup(STATE)", startup(st12State))
	cmd("PCRRead(10) resumed", cmd12(ord12PCRRead, u32(10)))
	cmd("PCRRead(17) resumed", cmd12(ord12PCRRead, u32(17)))
	ctl("STOP", []byte{0, 0, 0, swtpm.CmdStop}, 4)
	ctl("INIT", init, 4)
	cmd("PCRRead after INIT", cmd12(ord12PCRRead, u32(10)))
	cmd("Startup(STATE) with nothing saved", startup(st12State))
	cmd("PCRRead in failure mode", cmd12(ord12PCRRead, u32(10)))
	ctl("INIT", init, 4)
	cmd("Startup(CLEAR)", startup(st12Clear))
	cmd("PCRRead(10) cleared", cmd12(ord12PCRRead, u32(10)))
	return out.String()
}
