package manager

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
)

// headerBlob decodes the sealed blob of the disk's newest header.
func headerBlob(t *testing.T, d *memDisk) *hwtpm.SealedBlob {
	t.Helper()
	hs, _, err, ioErr := readHeaders(d)
	if err != nil || ioErr != nil {
		t.Fatalf("readHeaders: %v, %v", err, ioErr)
	}
	h := hs[0]
	if hs[1] != nil && (h == nil || hs[1].gen > h.gen) {
		h = hs[1]
	}
	b, err := hwtpm.UnmarshalSealedBlob(h.blob)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVersion1DiskOpens: a disk formatted by the version-1 code (its
// sealed blob without locality binding or seal epoch; the disk and the
// TPM state it was sealed on are in hwtpm's testdata) opens with its
// records, is resealed to the current blob version at once, and opens
// again without another reseal.
func TestVersion1DiskOpens(t *testing.T) {
	dir := t.TempDir()
	fix := "../hwtpm/testdata/v1"
	st, err := os.ReadFile(filepath.Join(fix, "tpm2-00.permall"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tpm2-00.permall"), st, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(fix, "mgr.img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	img, err := io.ReadAll(zr)
	if err != nil || len(img) != diskBytes {
		t.Fatalf("fixture image: %d bytes, %v", len(img), err)
	}
	d := newMemDisk(512, diskBytes)
	d.restore(img)
	if !headerBlob(t, d).Legacy() {
		t.Fatal("the fixture is not a version-1 disk")
	}
	s := swtpmtest.StartSwtpm(t, dir)
	var logs []string
	m := openMgr(t, d, hwOf(t, s), Config{Logf: func(f string, a ...any) { logs = append(logs, f) }})
	for i := range 3 {
		mustLoad(t, m, uuidN(i), blobN(i, 1))
	}
	if b := headerBlob(t, d); b.Legacy() || b.Locality != 0 {
		t.Fatalf("header blob after the first start: legacy %v, locality %d", b.Legacy(), b.Locality)
	}
	gen := m.Stats().HeaderGen
	if err := m.SaveHashKey(uuidN(3), blobN(3, 1)); err != nil {
		t.Fatal(err)
	}
	m.Close()
	t.Logf("first start: %q", logs)
	m = openMgr(t, d, hwOf(t, s), Config{})
	mustLoad(t, m, uuidN(3), blobN(3, 1))
	if g := m.Stats().HeaderGen; g != gen {
		t.Fatalf("header generation %d after the second start, %d after the first: resealed twice", g, gen)
	}
	m.Close()
}

// TestResealRetiresOldDiskCopy: the upgrade advice (docs/manager-storage.md
// 12.2) has the key sealed to no PCRs for a boot. A copy of the disk taken
// then must not release the key once the manager is back on the default
// selection, although that copy is as new as the disk for the rollback
// counter.
func TestResealRetiresOldDiskCopy(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hwOf(t, s), Config{SealPCRs: []uint{}})
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
	m.Close()
	weak := d.image()
	m = openMgr(t, d, hwOf(t, s), Config{})
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	m.Close()
	good := d.image()

	d.restore(weak)
	_, err := Open(d, hwOf(t, s), Config{SealPCRs: []uint{}})
	if !errors.Is(err, ErrUnseal) || !errors.Is(err, hwtpm.ErrRetired) {
		t.Fatalf("Open of the copy sealed to no PCRs = %v, want ErrUnseal wrapping hwtpm.ErrRetired", err)
	}
	t.Logf("old copy: %v", err)
	if !bytes.Equal(d.image(), weak) {
		t.Fatal("the refused copy was written to")
	}
	d.restore(good)
	m = openMgr(t, d, hwOf(t, s), Config{})
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	m.Close()
}
