package manager

import (
	"errors"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
)

// The TPM 1.2 host: swtpm_setup took ownership with these passwords.
const owner12, srk12 = "host-owner", "host-srk"

func hw12(t testing.TB, s *swtpmtest.Swtpm) *hwtpm.TPM12 {
	t.Helper()
	o, _ := hwtpm.ParseAuth("text:" + owner12)
	k, _ := hwtpm.ParseAuth("text:" + srk12)
	h, err := hwtpm.Open12(s.TPM(), hwtpm.Config{OwnerAuth: o, SRKAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestTPM12Host runs the manager's life on TPM 1.2 hardware: format,
// saves, a host reboot, a restored old disk, a changed sealing PCR.
func TestTPM12Host(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, owner12, srk12)
	d := newMemDisk(512, diskBytes)
	hw := hw12(t, s)
	m := openMgr(t, d, hw, Config{})
	c0 := m.Stats().Counter
	for i := range 3 {
		if err := m.SaveHashKey(uuidN(i), blobN(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	old := d.image()

	s.Restart()
	hw = hw12(t, s)
	m = openMgr(t, d, hw, Config{})
	for i := range 3 {
		mustLoad(t, m, uuidN(i), blobN(i, 1))
	}
	if err := m.SaveHashKey(uuidN(0), blobN(0, 2)); err != nil {
		t.Fatal(err)
	}
	if c, err := hw.ReadCounter(); err != nil || c != c0+4 || m.Stats().Counter != c {
		t.Fatalf("counter %d, %v; want %d = store's %d", c, err, c0+4, m.Stats().Counter)
	}
	m.Close()

	d2 := newMemDisk(512, diskBytes)
	d2.restore(d.image())
	d.restore(old)
	if _, err := Open(d, hw, Config{}); !errors.Is(err, ErrRollback) {
		t.Fatalf("Open(old image) on TPM 1.2 = %v, want ErrRollback", err)
	}

	swtpmtest.ExtendPCR12(t, s, 7)
	_, err := Open(d2, hw12(t, s), Config{})
	if !errors.Is(err, ErrUnseal) || !errors.Is(err, hwtpm.ErrPCRPolicy) || !strings.Contains(err.Error(), "changed since sealing: 7") {
		t.Fatalf("Open after PCR 7 changed = %v", err)
	}
	t.Logf("error: %v", err)
	s.Restart()
	m = openMgr(t, d2, hw12(t, s), Config{})
	mustLoad(t, m, uuidN(0), blobN(0, 2))
	m.Close()

	// The disk of a TPM 2.0 host does not open here.
	s20 := swtpmtest.StartSwtpm(t, "")
	d20 := newMemDisk(512, diskBytes)
	openMgr(t, d20, hwOf(t, s20), Config{}).Close()
	if _, err := Open(d20, hw12(t, s), Config{}); !errors.Is(err, ErrUnseal) || !errors.Is(err, hwtpm.ErrWrongParent) {
		t.Fatalf("Open(TPM 2.0 disk) on TPM 1.2 = %v", err)
	}
}

// BenchmarkSave12 is BenchmarkSave on TPM 1.2 hardware (swtpm): store
// commit on an in-memory disk, then TPM_IncrementCounter in an OIAP
// session.
func BenchmarkSave12(b *testing.B) {
	s := swtpmtest.StartSwtpm12(b, owner12, srk12)
	ct := &countingTPM{tr: s.TPM()}
	o, _ := hwtpm.ParseAuth("text:" + owner12)
	k, _ := hwtpm.ParseAuth("text:" + srk12)
	hw, err := hwtpm.Open12(ct, hwtpm.Config{OwnerAuth: o, SRKAuth: k})
	if err != nil {
		b.Fatal(err)
	}
	benchSaves(b, hw, ct)
}
