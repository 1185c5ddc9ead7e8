package vstate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// backend is the manager's side of the protocol, in memory.
type backend struct{ blobs map[[16]byte][]byte }

func (b *backend) Authorize(proto.PeerInfo, proto.Header) error { return nil }
func (b *backend) GetRandom(int) ([]byte, error)                { return nil, proto.ErrUnsupported }
func (b *backend) SaveHashKey(u [16]byte, blob []byte) error {
	b.blobs[u] = blob
	return nil
}
func (b *backend) LoadHashKey(u [16]byte) ([]byte, error) {
	blob, ok := b.blobs[u]
	if !ok {
		return nil, proto.ErrNotFound
	}
	return blob, nil
}

// TestManagerClient runs the store against the real wire encoding and the
// manager's request handler.
func TestManagerClient(t *testing.T) {
	be := &backend{blobs: map[[16]byte][]byte{}}
	h := &proto.Handler{Backend: be}
	peer := proto.PeerInfo{DomID: 7}
	mgr := NewManagerClient(func(cmd []byte) ([]byte, error) { return h.Handle(cmd, peer), nil })

	if _, err := mgr.LoadHashKey(); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("no record: %v", err)
	}
	dev := newMemDev(512, testSectors(512))
	s := newTestStore(t, dev, mgr)
	if _, err := s.Load(); !errors.Is(err, ErrFresh) {
		t.Fatal(err)
	}
	want := testState(2000, 5)
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	if got, err := loadFrom(t, 512, dev.live, mgr); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("reload through the protocol: %v", err)
	}

	// vtpmmgr shortens a blob ending in 12 zero bytes to 52; the store
	// must pad it back.
	blob, _ := mgr.LoadHashKey()
	blob = append(blob[:52], make([]byte, 12)...)
	be.blobs[peer.UUID] = blob
	if got, _ := mgr.LoadHashKey(); len(got) != 52 {
		t.Fatalf("handler answered %d bytes, want 52", len(got))
	}
	if _, err := loadFrom(t, 512, dev.live, mgr); !errors.Is(err, ErrNoMatchingSlot) {
		t.Fatalf("52-byte answer: %v", err)
	}

	down := NewManagerClient(func([]byte) ([]byte, error) { return nil, errors.New("ring closed") })
	if _, err := loadFrom(t, 512, dev.live, down); !errors.Is(err, ErrManager) || errors.Is(err, ErrNoRecord) {
		t.Fatalf("manager down: %v", err)
	}
	refuse := NewManagerClient(func(cmd []byte) ([]byte, error) {
		return proto.EncodeResponse(proto.TagVTPMReq+3, proto.TPMAuthFail, nil)
	})
	if err := refuse.SaveHashKey(blob); err == nil {
		t.Fatal("refused SAVEHASHKEY succeeded")
	}
	if _, err := refuse.LoadHashKey(); errors.Is(err, ErrNoRecord) || err == nil {
		t.Fatalf("auth failure read as %v", err)
	}
}
