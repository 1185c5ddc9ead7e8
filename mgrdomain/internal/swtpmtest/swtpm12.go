package swtpmtest

import (
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
)

// StartSwtpm12 starts swtpm as a TPM 1.2 that a host owner has set up
// the way the manager expects: swtpm_setup created the endorsement key,
// took ownership with owner password ownerPass and SRK password srkPass
// (their SHA-1 digests become the authorisation data, as the
// text:<password> form of owner_auth=/srk_auth= computes), and locked NV.
// With ownerPass "" the TPM is left unowned, without an EK. setup are
// more swtpm_setup options (--create-ek-cert: an EK certificate in NV
// index TPM_NV_INDEX_EKCert, from swtpm_localca).
func StartSwtpm12(t testing.TB, ownerPass, srkPass string, setup ...string) *Swtpm {
	t.Helper()
	for _, tool := range []string{"swtpm", "swtpm_setup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s not installed", tool)
		}
	}
	dir := t.TempDir()
	if ownerPass != "" {
		args := append([]string{"--tpm-state", dir, "--take-ownership", "--ownerpass", ownerPass, "--srkpass", srkPass, "--lock-nvram"}, setup...)
		out, err := exec.Command("swtpm_setup", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("swtpm_setup: %v\n%s", err, out)
		}
	}
	s := &Swtpm{t: t, Dir: dir}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// SetLocality makes later commands arrive at locality loc, as a TIS
// driver's locality request does (swtpm control channel CMD_SET_LOCALITY).
func (s *Swtpm) SetLocality(loc uint8) {
	s.t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.ctrlPort))
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	const cmdSetLocality = 5
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, cmdSetLocality), loc)); err != nil {
		s.t.Fatal(err)
	}
	var res [4]byte
	if _, err := io.ReadFull(c, res[:]); err != nil {
		s.t.Fatal(err)
	}
	if rc := binary.BigEndian.Uint32(res[:]); rc != 0 {
		s.t.Fatalf("swtpm: set locality %d: result %#x", loc, rc)
	}
}

// ExtendPCR12 changes a PCR of a TPM 1.2 (TPM_Extend).
func ExtendPCR12(t testing.TB, s *Swtpm, pcr uint32) {
	t.Helper()
	cmd := []byte{0x00, 0xC1, 0, 0, 0, 34, 0, 0, 0, 0x14}
	cmd = binary.BigEndian.AppendUint32(cmd, pcr)
	cmd = append(cmd, make([]byte, 20)...)
	rsp, err := s.TPM().Send(cmd)
	if err != nil || len(rsp) < 10 || binary.BigEndian.Uint32(rsp[6:]) != 0 {
		t.Fatalf("TPM_Extend(%d): % x, %v", pcr, rsp, err)
	}
}
