package measure

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
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
		if err := Reset(tpm); err != nil {
			t.Fatal(err)
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
