package measure

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/vtpmdomain/vtpm"
)

type nopLog struct{}

func (nopLog) Infof(string, ...any)  {}
func (nopLog) Debugf(string, ...any) {}
func (nopLog) Errorf(string, ...any) {}

// asControl sends as the control domain's frontend to an in-process vTPM.
type asControl struct{ s *vtpm.Server }

func (c asControl) Send(cmd []byte) ([]byte, error) {
	return c.s.Handle(vtpm.Peer{Name: "0/0", Control: true}, 0, cmd), nil
}

func read(t *testing.T, tpm asControl, alg tpm2.TPMAlgID, pcr uint) []byte {
	t.Helper()
	r, err := (tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: alg, PCRSelect: tpm2.PCClientCompatible.PCRs(pcr)}}}}).Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	return r.PCRValues.Digests[0].Buffer
}

// replay computes a PCR from its reset value (zero) and the data measured
// into it, without the package's code.
func replay1(data ...[]byte) []byte {
	pcr := make([]byte, 20)
	for _, d := range data {
		h := sha1.Sum(d)
		s := sha1.Sum(append(pcr, h[:]...))
		pcr = s[:]
	}
	return pcr
}

func replay256(data ...[]byte) []byte {
	pcr := make([]byte, 32)
	for _, d := range data {
		h := sha256.Sum256(d)
		s := sha256.Sum256(append(pcr, h[:]...))
		pcr = s[:]
	}
	return pcr
}

func TestMeasuredBoot(t *testing.T) {
	s, err := vtpm.NewServer(vtpm.Config{Options: vtpm.Options{Startup: vtpm.StartupClear}, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	tpm := asControl{s}
	kernel, initrd, cmdline := bytes.Repeat([]byte("kernel"), 1000), bytes.Repeat([]byte("initrd"), 999), "console=hvc0 root=/dev/xvda1"
	boot := func(initrd []byte) {
		t.Helper()
		// Something extended before the guest's boot must not count.
		if _, err := Extend(tpm, []Component{{PCRConfig, "stray", []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		if fam, err := Reset(tpm); err != nil || fam != Family20 {
			t.Fatalf("Reset: family %v, %v", fam, err)
		}
		ev, err := Extend(tpm, Boot(kernel, cmdline, initrd))
		if err != nil {
			t.Fatal(err)
		}
		if len(ev) != 3 || len(ev[0].Digests) < 2 {
			t.Fatalf("events %+v", ev)
		}
	}
	boot(initrd)
	if got, want := read(t, tpm, tpm2.TPMAlgSHA256, 4), replay256(kernel); !bytes.Equal(got, want) {
		t.Errorf("PCR 4 sha256 = %x, want %x", got, want)
	}
	if got, want := read(t, tpm, tpm2.TPMAlgSHA1, 4), replay1(kernel); !bytes.Equal(got, want) {
		t.Errorf("PCR 4 sha1 = %x, want %x", got, want)
	}
	pcr5 := replay256([]byte(cmdline), initrd)
	if got := read(t, tpm, tpm2.TPMAlgSHA256, 5); !bytes.Equal(got, pcr5) {
		t.Errorf("PCR 5 sha256 = %x, want %x", got, pcr5)
	}
	if got, want := read(t, tpm, tpm2.TPMAlgSHA1, 5), replay1([]byte(cmdline), initrd); !bytes.Equal(got, want) {
		t.Errorf("PCR 5 sha1 = %x, want %x", got, want)
	}

	// The same boot gives the same values; another initrd changes PCR 5
	// only.
	boot(initrd)
	if got := read(t, tpm, tpm2.TPMAlgSHA256, 5); !bytes.Equal(got, pcr5) {
		t.Errorf("second identical boot: PCR 5 = %x", got)
	}
	boot(append(initrd, 0))
	if got := read(t, tpm, tpm2.TPMAlgSHA256, 5); bytes.Equal(got, pcr5) {
		t.Error("a changed initrd left PCR 5 unchanged")
	}
	if got := read(t, tpm, tpm2.TPMAlgSHA256, 4); !bytes.Equal(got, replay256(kernel)) {
		t.Error("a changed initrd changed PCR 4")
	}
}

// pcrRead12 reads a PCR of a TPM 1.2 with TPM_PCRRead (ordinal 0x15),
// without the package's code.
func pcrRead12(t *testing.T, tpm asControl, pcr uint32) []byte {
	t.Helper()
	cmd := []byte{0x00, 0xC1, 0, 0, 0, 14, 0, 0, 0, 0x15}
	rsp, _ := tpm.Send(binary.BigEndian.AppendUint32(cmd, pcr))
	if len(rsp) != 30 || binary.BigEndian.Uint32(rsp[6:]) != 0 {
		t.Fatalf("TPM_PCRRead %d: %x", pcr, rsp)
	}
	return rsp[10:]
}

// A TPM 1.2 vTPM gets pv-grub's three TPM_Extends: SHA-1 of the kernel
// into PCR 4, of the command line and of the ramdisk (of nothing when
// there is none) into PCR 5.
func TestMeasuredBoot12(t *testing.T) {
	s, err := vtpm.NewServer(vtpm.Config{Options: vtpm.Options{Family: vtpm.Family12, Startup: vtpm.StartupClear}, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	tpm := asControl{s}
	kernel, initrd, cmdline := bytes.Repeat([]byte("kernel"), 1000), bytes.Repeat([]byte("initrd"), 999), "console=hvc0 root=/dev/xvda1"
	boot := func(initrd []byte) []Event {
		t.Helper()
		// Something extended before the guest's boot must not count.
		if _, err := Extend12(tpm, []Component{{PCRConfig, "stray", []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		if fam, err := Reset(tpm); err != nil || fam != Family12 {
			t.Fatalf("Reset: family %v, %v", fam, err)
		}
		ev, err := Extend12(tpm, BootPVGrub(kernel, cmdline, initrd))
		if err != nil {
			t.Fatal(err)
		}
		if len(ev) != 3 {
			t.Fatalf("events %+v", ev)
		}
		return ev
	}
	ev := boot(initrd)
	pcr4, pcr5 := replay1(kernel), replay1([]byte(cmdline), initrd)
	if got := pcrRead12(t, tpm, 4); !bytes.Equal(got, pcr4) {
		t.Errorf("PCR 4 = %x, want %x", got, pcr4)
	}
	if got := pcrRead12(t, tpm, 5); !bytes.Equal(got, pcr5) {
		t.Errorf("PCR 5 = %x, want %x", got, pcr5)
	}
	if d := sha1.Sum(initrd); !bytes.Equal(ev[2].Digests[tpm2.TPMAlgSHA1], d[:]) || !bytes.Equal(ev[2].PCRValue, pcr5) {
		t.Errorf("ramdisk event %+v", ev[2])
	}
	if got := pcrRead12(t, tpm, 6); !bytes.Equal(got, make([]byte, 20)) {
		t.Errorf("PCR 6 = %x, want zero", got)
	}

	// No ramdisk: pv-grub still extends SHA-1 of nothing.
	boot(nil)
	if got, want := pcrRead12(t, tpm, 5), replay1([]byte(cmdline), nil); !bytes.Equal(got, want) {
		t.Errorf("PCR 5 without a ramdisk = %x, want %x", got, want)
	}
	if got := pcrRead12(t, tpm, 4); !bytes.Equal(got, pcr4) {
		t.Errorf("PCR 4 without a ramdisk = %x, want %x", got, pcr4)
	}

	// A PCR the TPM does not have is an error, not an event.
	if ev, err := Extend12(tpm, []Component{{99, "bad", nil}}); err == nil || len(ev) != 0 {
		t.Errorf("extend of PCR 99: %v, %+v", err, ev)
	}
}
