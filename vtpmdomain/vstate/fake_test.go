package vstate

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/xenvtpm/xenvtpm/drivers/blkfront"
)

var _ Device = (*blkfront.Device)(nil)

var errLostReply = errors.New("fakemgr: power cut")

// Failure modes of fakeMgr.SaveHashKey.
const (
	saveOK             = iota
	saveFailBefore     // fail without storing the blob
	saveCommitThenFail // store the blob, then lose the answer
)

// fakeMgr is the manager domain: one blob, or none.
type fakeMgr struct {
	blob     []byte // nil: no record
	saveMode int
	loadErr  error
	saves    int
}

func (m *fakeMgr) SaveHashKey(blob []byte) error {
	if len(blob) != blobLen {
		return errors.New("fakemgr: bad blob length")
	}
	switch m.saveMode {
	case saveFailBefore:
		return errLostReply
	case saveCommitThenFail:
		m.blob = bytes.Clone(blob)
		return errLostReply
	}
	m.blob = bytes.Clone(blob)
	m.saves++
	return nil
}

func (m *fakeMgr) LoadHashKey() ([]byte, error) {
	if m.loadErr != nil {
		return nil, m.loadErr
	}
	if m.blob == nil {
		return nil, ErrNoRecord
	}
	return bytes.Clone(m.blob), nil
}

func testRand(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// testState is a recognisable state of n bytes.
func testState(n int, tag byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = tag ^ byte(i*7)
	}
	return b
}

const testSlot = 16 << 10

func newTestStore(t testing.TB, dev Device, mgr Manager) *Store {
	t.Helper()
	s, err := New(Config{Device: dev, Manager: mgr, Rand: testRand(1), SlotSize: testSlot})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loadFrom boots a new Store over a copy of img.
func loadFrom(t testing.TB, ss int, img []byte, mgr Manager) ([]byte, error) {
	t.Helper()
	return newTestStore(t, memDevFrom(ss, img), mgr).Load()
}
