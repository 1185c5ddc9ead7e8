package manager

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
	"github.com/xenvtpm/xenvtpm/ratelimit"
)

// Hardware is what the manager needs from the hardware TPM; *hwtpm.TPM
// (TPM 2.0) and *hwtpm.TPM12 (TPM 1.2) implement it.
type Hardware interface {
	Seal(key []byte, pcrs []uint) (*hwtpm.SealedBlob, error)
	// Reseal seals a key an older blob holds; once the new blob is on
	// disk, Retire makes the older blobs, and copies of them, unusable
	// where the TPM family allows it (TPM 2.0).
	Reseal(key []byte, pcrs []uint) (*hwtpm.SealedBlob, error)
	Retire(b *hwtpm.SealedBlob) error
	Unseal(b *hwtpm.SealedBlob) ([]byte, error)
	ReadCounter() (uint64, error)
	CreateCounter() (uint64, error)
	IncrementCounter() error
	CounterIndex() uint32
	GetRandom(n int) ([]byte, error)
	PCRRead(index uint32) ([20]byte, error)
}

var (
	_ Hardware = (*hwtpm.TPM)(nil)
	_ Hardware = (*hwtpm.TPM12)(nil)
)

// Config configures the manager (from the domain's command line).
type Config struct {
	// WallClock is the time of day, for the dates of the certificates the
	// manager issues (EK certificates and their CA); nil: the clock's
	// Now, which in the manager domain counts from its start unless the
	// board gives Xen's wall clock (pvh.WallClock).
	WallClock func() time.Time
	// SealPCRs is the sealpcrs= selection the storage key is sealed to;
	// nil means hwtpm.DefaultSealPCRs, an empty non-nil slice no PCR
	// policy (hwtpm.ParsePCRs gives both). A disk sealed to another
	// selection is resealed to this one at start-up, after it unsealed.
	SealPCRs []uint
	// NoAutocreate refuses SAVEHASHKEY for a UUID the store does not know
	// (autocreate=0), with a console line. The default (false) creates
	// the record on its first save, in group AutocreateGroup: see the
	// package documentation for why.
	NoAutocreate    bool
	AutocreateGroup uint32
	// Admins are the frontend domains whose management requests (tag
	// 0x01C2) are served (admin=); empty: none. A domain ID is what Xen
	// vouches for (the grant mapping and the event channel are bound to
	// it), unlike a UUID, which the toolstack writes.
	Admins []uint32
	// Reformat formats a disk that holds neither a manager header nor
	// zeros (garbage, a foreign disk). Never a default: it destroys
	// whatever is there.
	Reformat bool
	// AllowRollback opens a disk older than the hardware counter, and one
	// whose counter index vanished, then rebinds it to the current
	// hardware counter: an explicit operator recovery step.
	AllowRollback bool
	// NVWriteRate and NVWriteBurst cap the hardware NV writes (counter
	// increments, one per group commit): at most NVWriteBurst at once and
	// NVWriteRate on average, so at most NVWriteBurst + NVWriteRate×T in
	// any time T. Saves that arrive while the manager waits for the next
	// write are committed together. The last half of the burst is kept
	// for vTPMs within their share (see SaveHashKey). The zero Rate (or
	// NVWriteBurst 0) sets no cap; the domain's defaults come from its
	// command line (hwnvrate=, hwnvburst=).
	NVWriteRate  ratelimit.Rate
	NVWriteBurst int
	// BusyAfter is how long a save may wait for its hardware NV write (the
	// cap above, or a hardware TPM answering TPM_RC_NV_RATE or another
	// "retry later") before it is answered TPM_RETRY: nothing of it is
	// acknowledged and the vTPM tells its guest TPM_RC_NV_RATE. Zero means
	// DefaultBusyAfter.
	BusyAfter time.Duration
	// Logf, if set, receives start-up decisions (format, reseal, catching
	// up the counter) and the hardware's back-pressure starting and ending.
	Logf func(format string, args ...any)

	clock clock // nil: the real clock (tests set a fake one)
}

// The manager domain's default NV write cap (hwnvrate=, hwnvburst=): 24
// writes at once, then one every 5 s. Saturated, that is 17 280 writes a
// day, 6.3 million a year; give a lower rate if the TPM's data sheet
// promises less endurance. A vTPM's share is half: 12 saves at once, then
// one every 10 s (the vTPM domain's own default save budget refills at
// that rate too); past it, it still gets every write the others leave,
// but never the last 12 of the burst.
const (
	DefaultNVWriteRate  = "12/m"
	DefaultNVWriteBurst = 24
)

// DefaultBusyAfter is Config.BusyAfter's default: as long as the TPM 2.0
// layer itself waits out "retry later" answers for one command, and well
// below the minute a vTPM domain waits for the manager's answer.
const DefaultBusyAfter = 10 * time.Second

// Errors of Open. Returned errors wrap one of these (and the underlying
// store or hwtpm error); test with errors.Is.
var (
	// ErrGarbageDisk: the disk is neither blank nor a manager disk.
	ErrGarbageDisk = errors.New("manager: disk holds no manager header (garbage or a foreign disk); refusing to format over it")
	// ErrUnseal: the storage key could not be unsealed (a sealing PCR
	// changed, another TPM, TPM cleared, wrong owner_auth).
	ErrUnseal = errors.New("manager: cannot unseal the storage key")
	// ErrRollback: the disk is older than the hardware counter.
	ErrRollback = errors.New("manager: disk is older than the hardware NV counter (an old image was restored or its newest state was lost); refusing stale vTPM keys")
	// ErrCounterMissing: the disk has a store but the TPM has no counter.
	ErrCounterMissing = errors.New("manager: hardware NV counter is missing although the disk holds a store (TPM cleared or index deleted)")
	// ErrBadDisk: the header or the store fails verification.
	ErrBadDisk = errors.New("manager: disk contents do not verify")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("manager: closed")
)

// maxCatchUp bounds how far the disk may be ahead of the hardware counter
// at start-up. A save leaves it at most one ahead (store commit, power
// cut, no increment); a larger gap is not something this manager writes,
// and catching it up would spend NV writes for nothing.
const maxCatchUp = 16

// Manager is the manager's core: a proto.Backend and proto.PCRReader
// over the store and the hardware TPM. Methods are safe for concurrent
// use.
type Manager struct {
	hw  Hardware
	cfg Config
	clk clock
	dev store.Device
	st  *store.Store
	hdr *header

	key []byte // the storage key (reseals, header writes)
	// pcrCache holds the PCRs read while start-up checks the groups.
	pcrCache *pcrCache
	// quoteLimit rations each vTPM's deep quotes (deepquote.go).
	quoteLimit map[[16]byte]*ratelimit.Bucket

	amu sync.Mutex // management requests, one at a time
	cmu sync.Mutex // a store commit and its hardware increment
	// aikMu makes one TPM 1.2 identity key at a time (deepquote12.go):
	// TPM_MakeIdentity takes seconds and runs outside cmu.
	aikMu sync.Mutex

	mu        sync.Mutex // guards everything below
	groups    map[uint32]*group
	connected map[store.UUID]int // frontends connected per UUID
	idle      *sync.Cond         // on mu: signalled when the committer stops
	pending   map[store.UUID]*saveReq
	order     []store.UUID  // the pending peers, first come first served
	wake      chan struct{} // a save arrived (the committer may be waiting)
	stop      chan struct{} // closed by Close: waits end
	running   bool          // a committer goroutine runs
	closed    bool
	broken    error
	// owed: the store binds one more than the hardware counter, because
	// the last increment met back-pressure; it is made before the next
	// commit, so the gap never grows.
	owed      bool
	pressured bool // the hardware's back-pressure is in effect (logged once)
	nv        *ratelimit.Bucket
	reserve   float64
	shareRate ratelimit.Rate
	shares    map[store.UUID]*ratelimit.Bucket // peers that saved recently
	stats     Stats
}

// saveReq is one peer's pending save: the newest state it sent, and every
// caller waiting for it (earlier states of the same peer are superseded).
type saveReq struct {
	uuid  store.UUID
	blob  []byte
	since time.Time // when the oldest waiter arrived
	done  []chan error
}

var (
	_ proto.Backend   = (*Manager)(nil)
	_ proto.PCRReader = (*Manager)(nil)
)

func (m *Manager) logf(format string, args ...any) {
	if m.cfg.Logf != nil {
		m.cfg.Logf(format, args...)
	}
}

// Open starts the manager on its disk: formats a blank disk (new storage
// key, sealed; counter created), or unseals the storage key, checks the
// disk against the hardware counter and opens the store.
func Open(dev store.Device, hw Hardware, cfg Config) (*Manager, error) {
	if cfg.SealPCRs == nil {
		cfg.SealPCRs = slices.Clone(hwtpm.DefaultSealPCRs)
	}
	ss := dev.SectorSize()
	if ss < 512 || ss > slotSize || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("manager: sector size %d unsupported (want a power of two, 512..%d)", ss, slotSize)
	}
	m := newManager(dev, hw, cfg)
	sub := storeDevice{dev: dev, off: headerBytes / uint64(ss)}
	if dev.Sectors() <= sub.off {
		return nil, fmt.Errorf("manager: disk of %d sectors cannot hold the header region", dev.Sectors())
	}
	hs, blank, err, ioErr := readHeaders(dev)
	h := hs[0]
	switch {
	case ioErr != nil:
		return nil, ioErr
	case h == nil && blank:
		m.logf("manager: blank disk: formatting")
		err = m.format(sub)
	case h == nil && tornFirstHeader(err):
		// Format wipes slot 0, then writes slot 1, then slot 0, and only
		// then the store: one blank slot beside one torn slot is a first
		// format cut in its first header write. Nothing was stored yet.
		m.logf("manager: first format was interrupted (%v): formatting again", err)
		err = m.format(sub)
	case h == nil && cfg.Reformat:
		m.logf("manager: no valid header (%v): reformatting as asked", err)
		err = m.format(sub)
	case h == nil && errors.Is(err, errCorrupt):
		return nil, fmt.Errorf("%w: manager header damaged in both slots: %w", ErrBadDisk, err)
	case h == nil:
		return nil, fmt.Errorf("%w: %w", ErrGarbageDisk, err)
	default:
		m.hdr = h
		err = m.open(sub, hs[1])
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// newKey makes the storage key from both the domain's RNG and the TPM's,
// so a weak source on either side alone does not make a weak key.
func (m *Manager) newKey() ([]byte, error) {
	var local [32]byte
	if _, err := rand.Read(local[:]); err != nil {
		return nil, fmt.Errorf("manager: random: %w", err)
	}
	hwr, err := m.hw.GetRandom(32)
	if err != nil {
		return nil, fmt.Errorf("manager: TPM random: %w", err)
	}
	k := sha256.Sum256(append(local[:], hwr...))
	return k[:], nil
}

// format writes a fresh manager disk. Order: counter, key, seal, header,
// store. A cut before the header leaves a blank or old header; a cut
// after it leaves a header whose store is unformatted, which open
// finishes (the counter still equals formatCounter, so no save was ever
// acknowledged).
func (m *Manager) format(sub storeDevice) error {
	c, err := m.hw.ReadCounter()
	if errors.Is(err, hwtpm.ErrNoCounter) {
		m.logf("manager: creating the hardware counter")
		c, err = m.hw.CreateCounter()
		if err == nil {
			m.logf("manager: hardware counter %#08x created, value %d", m.hw.CounterIndex(), c)
		}
	}
	if err != nil {
		return fmt.Errorf("manager: format: %w", err)
	}
	key, err := m.newKey()
	if err != nil {
		return err
	}
	blob, err := m.hw.Seal(key, m.cfg.SealPCRs)
	if err != nil {
		return fmt.Errorf("manager: format: sealing the storage key: %w", err)
	}
	if err := wipeHeaderSlot(m.dev, 0); err != nil {
		return err
	}
	if err := m.writeHeaders(key, 0, c, []*hwtpm.SealedBlob{blob}, nil); err != nil {
		return err
	}
	st, err := store.Format(sub, key, c)
	if err != nil {
		return fmt.Errorf("manager: format: %w", err)
	}
	m.st, m.key = st, key
	if err := m.openGroups(); err != nil {
		return err
	}
	m.logf("manager: formatted: storage key sealed to PCRs %s, counter %d", hwtpm.FormatPCRs(m.cfg.SealPCRs), c)
	return nil
}

// open starts on a disk with a valid header; older is the other slot's
// header (nil if that slot does not verify).
func (m *Manager) open(sub storeDevice, older *header) error {
	var blobs []*hwtpm.SealedBlob
	for _, x := range m.hdr.blobs() {
		b, err := hwtpm.UnmarshalSealedBlob(x)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadDisk, err)
		}
		blobs = append(blobs, b)
	}
	blob := blobs[0]
	var key []byte
	var err error
	if m.sealedToGroup0() {
		key, err = m.unsealApproved(blobs)
	} else {
		key, err = m.hw.Unseal(blob)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnseal, err)
	}
	if !m.hdr.verify(key) {
		return fmt.Errorf("%w: header generation %d fails authentication under the unsealed key", ErrBadDisk, m.hdr.gen)
	}
	c, err := m.hw.ReadCounter()
	recreated := false
	if errors.Is(err, hwtpm.ErrNoCounter) && m.cfg.AllowRollback {
		m.logf("manager: hardware counter missing; recreating it as asked (AllowRollback)")
		c, err = m.hw.CreateCounter()
		recreated = true
	} else if errors.Is(err, hwtpm.ErrNoCounter) {
		return fmt.Errorf("%w: %w", ErrCounterMissing, err)
	}
	if err != nil {
		return fmt.Errorf("manager: reading the hardware counter: %w", err)
	}
	st, err := store.Open(sub, key, store.Options{MinCounter: c, AllowRollback: m.cfg.AllowRollback})
	switch {
	case err == nil:
	case onlyNotFormatted(err) && c == m.hdr.formatCounter:
		// The first format was cut between header and store: nothing was
		// ever saved (the counter never moved), so formatting is safe.
		m.logf("manager: header present but store unformatted (interrupted format): formatting the store")
		st, err = store.Format(sub, key, c)
		if err != nil {
			return fmt.Errorf("manager: format: %w", err)
		}
	case errors.Is(err, store.ErrRollback) && !errors.Is(err, store.ErrCorrupt) && !errors.Is(err, store.ErrAuth) && !errors.Is(err, store.ErrTruncated):
		// Every intact state is older than the hardware: a restored image.
		// (A damaged newest state whose predecessor is older is reported
		// as ErrBadDisk below, with the rollback reason in the details.)
		return fmt.Errorf("%w: %w", ErrRollback, err)
	default:
		return fmt.Errorf("%w: %w", ErrBadDisk, err)
	}
	m.st, m.key = st, key
	if d := st.Counter(); d < c || recreated {
		// Only with AllowRollback: bind the state to the hardware as it is.
		m.logf("manager: rebinding the store (counter %d) to the hardware counter %d", d, c)
		if err := st.Rebind(c); err != nil {
			return fmt.Errorf("manager: rebind: %w", err)
		}
	} else if d > c {
		if d-c > maxCatchUp {
			return fmt.Errorf("%w: disk binds counter %d, hardware %d: further ahead than a save can leave it", ErrBadDisk, d, c)
		}
		// A save committed but the increment did not happen (power cut):
		// that save was never acknowledged; keeping it is correct.
		m.logf("manager: disk counter %d ahead of hardware %d: catching up", d, c)
		for ; c < d; c++ {
			if err := m.hw.IncrementCounter(); err != nil {
				return fmt.Errorf("manager: catching up the hardware counter: %w", err)
			}
			m.stats.HWWrites++
		}
	}
	if err := m.openGroups(); err != nil {
		return err
	}
	if err := m.reconcileGroup0(); err != nil {
		return err
	}
	switch {
	case m.sealedToGroup0():
		// sealpcrs= does not apply: group 0's SAA decides.
		if older == nil || !bytes.Equal(older.signedPart()[hdrFixed:], m.hdr.signedPart()[hdrFixed:]) || older.formatCounter != m.hdr.formatCounter {
			m.logf("manager: header slot %d is stale or damaged: rewriting both", (m.hdr.gen+1)%headerSlots)
			return m.writeHeaders(key, m.hdr.gen, m.hdr.formatCounter, blobs, m.hdr.list)
		}
		return nil
	case !slices.Equal(blob.PCRs, m.cfg.SealPCRs):
		return m.reseal(key)
	case blob.Legacy():
		m.logf("manager: storage key sealed in the version-1 format (no locality binding, no seal epoch): resealing")
		return m.reseal(key)
	case older == nil || !bytes.Equal(older.blob, m.hdr.blob) || older.formatCounter != m.hdr.formatCounter:
		// The other slot is damaged, or still holds the blob before a
		// reseal that was cut after its first write: rewrite both, so the
		// old blob (maybe sealed to a weaker selection) is gone and one
		// damaged slot again leaves a copy.
		m.logf("manager: header slot %d is stale or damaged: rewriting both", (m.hdr.gen+1)%headerSlots)
		return m.writeHeaders(key, m.hdr.gen, m.hdr.formatCounter, []*hwtpm.SealedBlob{blob}, nil)
	}
	return nil
}

// tornFirstHeader: one header slot blank and the other failing its checks
// (as opposed to garbage without a magic).
func tornFirstHeader(err error) bool {
	return errors.Is(err, errBlankSlot) && errors.Is(err, errCorrupt)
}

// onlyNotFormatted: the store has no superblock at all (as opposed to
// one that failed for another reason).
func onlyNotFormatted(err error) bool {
	return errors.Is(err, store.ErrNotFormatted) && !errors.Is(err, store.ErrRollback) &&
		!errors.Is(err, store.ErrAuth) && !errors.Is(err, store.ErrCorrupt) && !errors.Is(err, store.ErrTruncated)
}

// writeHeaders writes the header twice, generations gen+1 and gen+2, one
// per slot, each flushed: a torn write leaves the previous generation in
// the other slot, and afterwards one damaged slot still leaves a copy.
func (m *Manager) writeHeaders(key []byte, gen, formatCounter uint64, blobs []*hwtpm.SealedBlob, list []byte) error {
	for i := range uint64(headerSlots) {
		h := &header{gen: gen + 1 + i, formatCounter: formatCounter, counterIndex: m.hw.CounterIndex(), blob: blobs[0].Marshal(), list: list}
		for _, x := range blobs[1:] {
			h.extra = append(h.extra, x.Marshal())
		}
		h.sign(key)
		if err := writeHeader(m.dev, h); err != nil {
			return err
		}
		m.mu.Lock() // Stats reads it
		m.hdr = h
		m.mu.Unlock()
	}
	return nil
}

// reseal seals the key to the configured PCR selection and writes the
// next header generations; the previous slot keeps the old blob until it
// lands. Then the old blob is retired, so no copy of it (an older disk
// image, maybe sealed to a weaker selection) releases the key any more;
// a cut before that is finished by the next start's unseal.
func (m *Manager) reseal(key []byte) error {
	blob, err := m.hw.Reseal(key, m.cfg.SealPCRs)
	if err != nil {
		return fmt.Errorf("manager: resealing to PCRs %s: %w", hwtpm.FormatPCRs(m.cfg.SealPCRs), err)
	}
	if err := m.writeHeaders(key, m.hdr.gen, m.hdr.formatCounter, []*hwtpm.SealedBlob{blob}, nil); err != nil {
		return err
	}
	if err := m.hw.Retire(blob); err != nil {
		return fmt.Errorf("manager: resealed, but retiring the old blob: %w", err)
	}
	m.logf("manager: storage key resealed to PCRs %s", hwtpm.FormatPCRs(m.cfg.SealPCRs))
	return nil
}

// Authorize: a peer acts only on its own record, because every operation
// takes the UUID from PeerInfo, which the tpmback layer fills from the
// `uuid` key of the peer's own backend directory (written by the
// toolstack in dom0, which is trusted); a request never names a UUID. So
// the checks here are that the peer has a UUID at all, that it is not one
// of the groups' reserved keys, and that management requests come from a
// domain named in admin= (dom0 by default) — not, as in the old manager,
// from whichever vTPM connected first.
func (m *Manager) Authorize(peer proto.PeerInfo, h proto.Header) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if peer.UUID == ([16]byte{}) {
		return fmt.Errorf("%w: %v has no uuid in its backend directory", proto.ErrForbidden, peer)
	}
	if isReserved(peer.UUID) {
		return fmt.Errorf("%w: %v: that uuid is reserved", proto.ErrForbidden, peer)
	}
	if h.Tag == proto.TagMgmtReq && !slices.Contains(m.cfg.Admins, peer.DomID) {
		return fmt.Errorf("%w: management commands are served only to frontends in domains %v (admin=); domain %d is not one", proto.ErrForbidden, m.cfg.Admins, peer.DomID)
	}
	return nil
}

// LoadHashKey returns the blob last saved for the vTPM, if its group's
// SAA approved this host.
func (m *Manager) LoadHashKey(uuid [16]byte) ([]byte, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	rec, err := m.savedRecord(uuid)
	if err != nil {
		return nil, err
	}
	return rec.Blob, nil
}

// savedRecord returns the vTPM's record if it has saved a key and its
// group's SAA approved this host.
func (m *Manager) savedRecord(uuid [16]byte) (store.Record, error) {
	rec, err := m.st.Get(uuid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(rec.Blob) == 0) {
		// A record VTPM_NEW made has no key until the vTPM's first save.
		return rec, fmt.Errorf("%w: %x", proto.ErrNotFound, uuid)
	}
	if err != nil {
		return rec, fmt.Errorf("manager: reading record %x: %w", uuid, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return rec, m.usableGroup(uuid, rec.Group)
}

// GetRandom passes through to the hardware TPM.
func (m *Manager) GetRandom(n int) ([]byte, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	return m.hw.GetRandom(n)
}

// PCRRead passes through to the hardware TPM's SHA-1 bank (hwinitpcr=).
func (m *Manager) PCRRead(index uint32) ([20]byte, error) {
	if err := m.usable(); err != nil {
		return [20]byte{}, err
	}
	return m.hw.PCRRead(index)
}

func (m *Manager) usable() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Stats are the manager's counters.
type Stats struct {
	Records    uint64 // vTPM records
	Groups     int
	Counter    uint64 // the counter value the store binds
	Saves      uint64 // acknowledged SAVEHASHKEYs since Open
	Commits    uint64 // store commits since Open (each followed by an NV increment)
	HWWrites   uint64 // hardware NV writes (counter increments) since Open, start-up's catch-up included
	Coalesced  uint64 // saves superseded by a newer state of the same vTPM before their commit
	Busy       uint64 // saves answered TPM_RETRY (hardware back-pressure or the NV write cap)
	Waiting    int    // saves waiting for their group commit now
	Owed       bool   // the hardware counter is one behind the store (back-pressure): made up before the next commit
	EKCerts    uint64 // EK certificates issued since Open
	DeepQuotes uint64 // deep quotes answered since Open
	// SealedToApprovals: the storage key is sealed to group 0's approval
	// list (SealPCRs does not apply).
	SealedToApprovals bool
	SealPCRs          []uint
	HeaderGen         uint64
	StoreInfo         store.Info
}

// Stats reports the manager's state.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	st.Records, st.Counter, st.Owed = m.st.Len(), m.st.Counter(), m.owed
	for _, g := range m.groups {
		st.Records -= uint64(g.nrec)
	}
	st.Groups = len(m.groups)
	st.SealedToApprovals = m.sealedToGroup0()
	st.Waiting = 0
	for _, r := range m.pending {
		st.Waiting += len(r.done)
	}
	st.SealPCRs, st.HeaderGen, st.StoreInfo = slices.Clone(m.cfg.SealPCRs), m.hdr.gen, m.st.Info()
	return st
}

// Close waits for a group commit in progress, answers the saves still
// waiting for theirs ErrClosed, then refuses every further request.
// Everything acknowledged is already durable (disk and counter), so there
// is nothing to flush: the domain calls it on `xl shutdown`.
func (m *Manager) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.stop)
	}
	for m.running {
		m.idle.Wait()
	}
	m.mu.Unlock()
	return nil
}
