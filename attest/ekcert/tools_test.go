package ekcert

import (
	"bytes"
	"crypto"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/tcp"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// provision defines the EK certificate index idx with the profile's
// attributes under the platform hierarchy, as a manufacturer does, and
// writes der into it.
func provision(t *testing.T, tpm transport.TPM, idx gt.TPMHandle, der []byte) {
	t.Helper()
	platform := gt.AuthHandle{Handle: gt.TPMRHPlatform, Auth: gt.PasswordAuth(nil)}
	if _, err := (gt.NVDefineSpace{
		AuthHandle: platform,
		PublicInfo: gt.New2B(gt.TPMSNVPublic{
			NVIndex:    idx,
			NameAlg:    gt.TPMAlgSHA256,
			Attributes: NVCertAttributes(),
			DataSize:   uint16(len(der)),
		}),
	}).Execute(tpm); err != nil {
		t.Fatalf("NV_DefineSpace %#x: %v", idx, err)
	}
	pub, err := (gt.NVReadPublic{NVIndex: idx}).Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	// TPM2_NV_Write takes at most MAX_NV_BUFFER_SIZE bytes at a time;
	// 512 is below every TPM's.
	for off := 0; off < len(der); off += 512 {
		chunk := der[off:min(off+512, len(der))]
		if _, err := (gt.NVWrite{
			AuthHandle: platform,
			NVIndex:    gt.NamedHandle{Handle: idx, Name: pub.NVName},
			Data:       gt.TPM2BMaxNVBuffer{Buffer: chunk},
			Offset:     uint16(off),
		}).Execute(tpm); err != nil {
			t.Fatalf("NV_Write %#x at %d: %v", idx, off, err)
		}
	}
}

// tpm2-tools' tpm2_getekcertificate finds the certificates the way a
// guest's tooling would: in the profile's NV indices of the project's
// engine (served by cmd/vtpmd over mssim), and they are the ones issued.
func TestTPM2GetEKCertificate(t *testing.T) {
	if _, err := exec.LookPath("tpm2_getekcertificate"); err != nil {
		t.Skip("SKIP: tpm2-tools not installed (apt-get install tpm2-tools)")
	}
	bin, dir := swtpmtest.BuildVtpmd(t)
	p := swtpmtest.FreePortPair(t)
	addr := "127.0.0.1:" + strconv.Itoa(p)
	daemon := exec.Command(bin, "-family", "2.0", "-mssim", addr)
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	var tpm transport.TPMCloser
	var err error
	for range 100 {
		if tpm, err = tcp.Open(tcp.Config{CommandAddress: addr, PlatformAddress: net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1))}); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := tpm.(*tcp.TPM).PowerOn(); err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	ca, caCert := newCA(t, "ecdsa")
	nb, na := window()
	var ders [2][]byte
	var eks [2]crypto.PublicKey
	for i, c := range []struct {
		tmpl gt.TPMTPublic
		idx  gt.TPMHandle
	}{{gtRSAEK, NVIndexRSA2048Cert}, {gtECCEK, NVIndexECCP256Cert}} {
		eks[i] = createEK(t, tpm, c.tmpl)
		if ders[i], err = Issue(ca, caCert, eks[i], testInfo, nb, na); err != nil {
			t.Fatal(err)
		}
		provision(t, tpm, c.idx, ders[i])
	}
	tpm.Close()

	rsaOut, eccOut := filepath.Join(dir, "rsa.crt"), filepath.Join(dir, "ecc.crt")
	cmd := exec.Command("tpm2_getekcertificate", "-o", rsaOut, "-o", eccOut)
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=mssim:host=127.0.0.1,port="+strconv.Itoa(p))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tpm2_getekcertificate: %v\n%s", err, out)
	}
	for i, f := range []string{rsaOut, eccOut} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The tool writes PEM unless told --raw.
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		if !bytes.Equal(b, ders[i]) {
			t.Errorf("%s: not the certificate issued", filepath.Base(f))
		}
		if _, err := Check(b, caCert, eks[i]); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}
