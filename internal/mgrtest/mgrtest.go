// Package mgrtest starts the real manager logic (mgrdomain/manager) on
// swtpm for tests outside mgrdomain: a manager over a hardware TPM that
// swtpm plays, on an in-memory disk, reached through its dispatcher as
// dom0 or as a vTPM domain would reach it. The vTPM server's deep quote
// and xenvtpm's `group ak` and `verify quote` are tested against it.
// It is for tests only.
package mgrtest

import (
	"testing"

	gt "github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/manager"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// diskBytes is the size of the manager's disk.
const diskBytes = 16 << 20

// Disk is an in-memory store.Device of 512-byte sectors.
type Disk struct{ Data []byte }

func (d *Disk) ReadAt(p []byte, s uint64) error  { copy(p, d.Data[s*512:]); return nil }
func (d *Disk) WriteAt(p []byte, s uint64) error { copy(d.Data[s*512:], p); return nil }
func (d *Disk) SectorSize() int                  { return 512 }
func (d *Disk) Sectors() uint64                  { return uint64(len(d.Data) / 512) }
func (d *Disk) Flush() error                     { return nil }

var _ store.Device = (*Disk)(nil)

// Dom0 is dom0 as the manager's dispatcher sees it.
var Dom0 = proto.PeerInfo{DomID: 0, UUID: [16]byte{0xd0}}

// Peer is the manager's dispatcher as one domain reaches it; it is a
// transport for mgmt.Client.
type Peer struct {
	H    *proto.Handler
	Info proto.PeerInfo
}

// Send hands cmd to the dispatcher as p.Info and returns its response.
func (p Peer) Send(cmd []byte) ([]byte, error) { return p.H.Handle(cmd, p.Info), nil }

// Manager is the manager domain's logic with dom0 as its admin, on a
// fresh 16 MiB Disk, and its dispatcher H.
type Manager struct {
	*manager.Manager
	H *proto.Handler
}

// Open opens a manager over hw; it is closed when the test ends.
func Open(t testing.TB, hw manager.Hardware) *Manager {
	t.Helper()
	m, err := manager.Open(&Disk{make([]byte, diskBytes)}, hw, manager.Config{Admins: []uint32{0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &Manager{Manager: m, H: &proto.Handler{Backend: m}}
}

// Start opens a manager over a TPM 2.0 swtpm (swtpmtest.Start).
func Start(t testing.TB) *Manager {
	t.Helper()
	sw := swtpmtest.Start(t)
	(gt.Startup{StartupType: gt.TPMSUClear}).Execute(sw)
	hw, err := hwtpm.Open(sw, hwtpm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return Open(t, hw)
}

// Start12 opens a manager over a TPM 1.2 swtpm owned with ownerPass and
// srkPass (swtpmtest.Start12Owned), given as text: secrets.
func Start12(t testing.TB, ownerPass, srkPass string) *Manager {
	t.Helper()
	sw := swtpmtest.Start12Owned(t, ownerPass, srkPass)
	o, _ := hwtpm.ParseAuth("text:" + ownerPass)
	k, _ := hwtpm.ParseAuth("text:" + srkPass)
	hw, err := hwtpm.Open12(sw, hwtpm.Config{OwnerAuth: o, SRKAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	return Open(t, hw)
}

// Dom0 is a management client speaking to m as dom0.
func (m *Manager) Dom0() mgmt.Client { return mgmt.Client{T: Peer{m.H, Dom0}} }

// AddVTPM gives the vTPM uuid a record (a hash key), as its creation
// would, so that the manager answers it.
func (m *Manager) AddVTPM(t testing.TB, uuid [16]byte) {
	t.Helper()
	if err := m.SaveHashKey(uuid, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
}

// Ask hands req, a vTPM domain's request, to the dispatcher as peer and
// returns the response's payload.
func (m *Manager) Ask(req []byte, peer proto.PeerInfo) ([]byte, error) {
	return proto.ParseResponse(m.H.Handle(req, peer), proto.TagVTPMReq)
}
