// Command guestcheck runs inside the Linux guest of the bridge's QEMU test
// (toolstack/bridge qemu_test.go) against /dev/tpmrm0, one line per check,
// "OK <what>" or "FAIL <what>: <why>". On the first boot (no NV index
// 0x01500040 yet) it uses the TPM, extends PCR 16, defines the index and
// prints "BOOT 1"; on the second it checks that the reboot reset PCR 16
// and kept the index, removes it and prints "BOOT 2".
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

const nvIndex = gt.TPMHandle(0x01500040)

var failed bool

func check(what string, err error) bool {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", what, err)
		return false
	}
	fmt.Printf("OK %s\n", what)
	return true
}

func pcr16(tpm transport.TPM) ([]byte, error) {
	r, err := (gt.PCRRead{PCRSelectionIn: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{
		{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(16)}}}}).Execute(tpm)
	if err != nil {
		return nil, err
	}
	return r.PCRValues.Digests[0].Buffer, nil
}

func main() {
	driver, _ := os.Readlink("/sys/class/tpm/tpm0/device/driver")
	major, _ := os.ReadFile("/sys/class/tpm/tpm0/tpm_version_major")
	fmt.Printf("TPM-DRIVER %s VERSION %s\n", filepath.Base(driver), strings.TrimSpace(string(major)))
	tpm, err := linuxtpm.Open("/dev/tpmrm0")
	if !check("open /dev/tpmrm0", err) {
		os.Exit(1)
	}
	defer tpm.Close()
	if _, err := (gt.NVReadPublic{NVIndex: nvIndex}).Execute(tpm); err != nil {
		firstBoot(tpm)
		fmt.Println("BOOT 1")
	} else {
		v, err := pcr16(tpm)
		if err == nil && !bytes.Equal(v, make([]byte, 32)) {
			err = fmt.Errorf("PCR 16 = %x after the reboot", v)
		}
		check("reboot reset PCR 16", err)
		_, err = (gt.NVUndefineSpace{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: nvIndex}}).Execute(tpm)
		check("NV index kept across the reboot", err)
		fmt.Println("BOOT 2")
	}
	if failed {
		os.Exit(1)
	}
}

func firstBoot(tpm transport.TPM) {
	r, err := (gt.GetRandom{BytesRequested: 16}).Execute(tpm)
	if err == nil && len(r.RandomBytes.Buffer) != 16 {
		err = fmt.Errorf("%d bytes", len(r.RandomBytes.Buffer))
	}
	check("getrandom", err)
	cp, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tpm)
	if check("createprimary", err) {
		_, err = (gt.FlushContext{FlushHandle: cp.ObjectHandle}).Execute(tpm)
		check("flushcontext", err)
	}
	_, err = (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 16, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: bytes.Repeat([]byte{1}, 32)}}}}).Execute(tpm)
	if err == nil {
		var v []byte
		if v, err = pcr16(tpm); err == nil && bytes.Equal(v, make([]byte, 32)) {
			err = fmt.Errorf("PCR 16 still zero")
		}
	}
	check("pcrextend 16", err)
	_, err = (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(gt.TPMSNVPublic{
		NVIndex: nvIndex, NameAlg: gt.TPMAlgSHA256, DataSize: 8,
		Attributes: gt.TPMANV{OwnerWrite: true, OwnerRead: true, NT: gt.TPMNTOrdinary}})}).Execute(tpm)
	check("nvdefine", err)
}
