package vstate

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Device is a block device addressed in sectors; *blkfront.Device is one.
//
// Writes between two Flush calls may reach the medium in any order and the
// sector being written when power fails may be torn; the store relies only
// on every write issued before a Flush being durable once Flush returns.
type Device interface {
	// ReadAt reads len(p) bytes, a multiple of SectorSize, from sector on.
	ReadAt(p []byte, sector uint64) error
	// WriteAt writes len(p) bytes, a multiple of SectorSize, from sector on.
	WriteAt(p []byte, sector uint64) error
	// Flush makes every completed write durable.
	Flush() error
	// SectorSize is the sector size in bytes.
	SectorSize() int
	// Sectors is the device size in sectors.
	Sectors() uint64
}

// Outcomes of Load, and Save's refusals. Each is matched with errors.Is;
// the returned error adds what was found.
var (
	// ErrNoRecord is what a Manager reports when it holds no blob for
	// this vTPM.
	ErrNoRecord = errors.New("vstate: the manager has no record of this vTPM")
	// ErrFresh: neither the manager nor the disk holds state. This is the
	// first start of a new vTPM; the caller manufactures a TPM and saves it.
	ErrFresh = errors.New("vstate: no saved state anywhere: first start of this vTPM, a new TPM must be manufactured")
	// ErrNoMatchingSlot: the manager holds a blob, but neither slot on the
	// disk is the one it sealed.
	ErrNoMatchingSlot = errors.New("vstate: the disk does not hold the state the manager sealed: the disk was replaced, rolled back or corrupted")
	// ErrCorrupt: a slot is the one the manager sealed (its SHA-256
	// matches) but it does not decrypt or its header is unusable.
	ErrCorrupt = errors.New("vstate: the sealed state is on the disk but cannot be opened: the slot is corrupted or was written by an incompatible version")
	// ErrForeignDisk: the manager holds no blob, yet the disk holds saved
	// state: the disk belongs to another vTPM or the manager lost its record.
	ErrForeignDisk = errors.New("vstate: the manager has no record of this vTPM but the disk holds saved state: the disk belongs to another vTPM or the manager lost its record")
	// ErrManager: the manager could not be asked, or answered with an
	// error or a malformed blob.
	ErrManager = errors.New("vstate: the manager did not answer")
	// ErrTooLarge: the state does not fit in a slot.
	ErrTooLarge = errors.New("vstate: state does not fit in a slot")
	// ErrDiskTooSmall: the device cannot hold two slots.
	ErrDiskTooSmall = errors.New("vstate: disk too small for two state slots")
	// ErrNotLoaded: Save before a successful Load, ErrFresh or Reset. It
	// keeps a caller bug from replacing state the manager still vouches for.
	ErrNotLoaded = errors.New("vstate: refusing to save: no state was loaded and no fresh start was ordered (Reset discards the old state)")
)

// Config configures a Store.
type Config struct {
	Device  Device
	Manager Manager
	// Rand supplies keys and nonces; crypto/rand when nil.
	Rand io.Reader
	// SlotSize is each slot's size in bytes, header sector included: a
	// multiple of the sector size. It fixes where slot 1 starts, so it must
	// not change over the disk's life. DefaultSlotSize when zero.
	SlotSize int
}

// SaveStats describes one Save.
type SaveStats struct {
	Slot       int
	Generation uint64
	StateBytes int
	// PayloadOffset is the byte offset of the slot's ciphertext on the
	// device (after its header sector).
	PayloadOffset int64
	// BytesWritten counts every byte sent to the device, sector padding
	// and the first-save marker included.
	BytesWritten int
	// Disk is the time to write the slot and flush; Manager is the
	// SAVEHASHKEY round trip.
	Disk, Manager time.Duration
	// MarkerErr is set when the first-save marker could not be written.
	// The save itself succeeded; see docs/vtpm-storage.md §4.
	MarkerErr error
}

// Stats are cumulative figures for a Store.
type Stats struct {
	Slot         int    // slot holding the state the manager knows; -1 if none
	Generation   uint64 // that slot's generation
	Saves        uint64 // successful saves
	BytesWritten uint64 // by all save attempts
	Disk         time.Duration
	Manager      time.Duration
	Last         SaveStats // the last successful save
}

// Store keeps one vTPM's state on its disk. It is safe for concurrent use.
type Store struct {
	dev         Device
	mgr         Manager
	rnd         io.Reader
	ss          int
	slotSectors uint64
	maxCt       int // ciphertext capacity of a slot

	mu sync.Mutex
	// known says whether cur is the slot the manager's blob points to (-1:
	// it points to nothing on this disk). It is false before Load and after
	// a SAVEHASHKEY that failed, since the manager may have committed it.
	known  bool
	cur    int
	curGen uint64
	// armed allows Save: set by a successful Load, ErrFresh or Reset.
	armed   bool
	loadErr error
	stats   Stats
}

// New checks the configuration and the disk geometry. It does not touch
// the disk or the manager; Load does.
func New(cfg Config) (*Store, error) {
	if cfg.Device == nil || cfg.Manager == nil {
		return nil, errors.New("vstate: Config needs a Device and a Manager")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.SlotSize == 0 {
		cfg.SlotSize = DefaultSlotSize
	}
	ss := cfg.Device.SectorSize()
	if ss < 512 || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("vstate: sector size %d is not a power of two of at least 512", ss)
	}
	if cfg.SlotSize%ss != 0 || cfg.SlotSize < 2*ss || cfg.SlotSize > 1<<31 {
		return nil, fmt.Errorf("vstate: slot size %d is not 2..%d sectors of %d bytes", cfg.SlotSize, (1<<31)/ss, ss)
	}
	s := &Store{
		dev: cfg.Device, mgr: cfg.Manager, rnd: cfg.Rand, ss: ss,
		slotSectors: uint64(cfg.SlotSize / ss),
		maxCt:       cfg.SlotSize - ss,
		cur:         -1,
	}
	s.stats.Slot = -1
	if n := cfg.Device.Sectors(); n < 2*s.slotSectors {
		return nil, fmt.Errorf("%w: %d bytes, two %d-byte slots need %d", ErrDiskTooSmall, n*uint64(ss), cfg.SlotSize, 2*cfg.SlotSize)
	}
	return s, nil
}

// Open is New followed by Load. When New succeeds the Store is returned
// even if Load fails, so the caller can Reset it.
func Open(cfg Config) (*Store, []byte, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	state, err := s.Load()
	return s, state, err
}

// MaxState is the largest state Save accepts.
func (s *Store) MaxState() int { return s.maxCt - tagLen }

// Load is the boot protocol: ask the manager for its blob, find the slot
// it sealed, verify and decrypt it. It returns the state, or ErrFresh
// (Save is then allowed), or one of the refusals, after which Save is
// refused until Reset.
func (s *Store) Load() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	state, err := s.load()
	s.loadErr = err
	if err == nil || errors.Is(err, ErrFresh) {
		s.armed = true
	}
	return state, err
}

func (s *Store) load() ([]byte, error) {
	key, slots, k, err := s.locate()
	if err != nil {
		return nil, err
	}
	if key == nil {
		if why := claimed(slots); why != "" {
			return nil, fmt.Errorf("%w (%s)", ErrForeignDisk, why)
		}
		return nil, ErrFresh
	}
	if k < 0 {
		return nil, fmt.Errorf("%w (on disk: %s)", ErrNoMatchingSlot, describe(slots))
	}
	state, err := s.unseal(slots[k], k, key)
	if err != nil {
		return nil, fmt.Errorf("%w (slot %d: %v)", ErrCorrupt, k, err)
	}
	return state, nil
}

// Reset discards whatever the disk and the manager hold: the next Save
// writes a new state and replaces the manager's record. It is the
// operator's decision, never taken by the store itself. The slot the
// manager's blob points to is still left alone until that Save commits.
func (s *Store) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		if _, _, _, err := s.locate(); err != nil {
			return err
		}
	}
	s.armed = true
	return nil
}

// slot is one slot as read from the disk.
type slot struct {
	hdr []byte // the header sector
	raw []byte // hdr, then the ciphertext sectors it claims
	sum [32]byte
	ok  bool // the header claims an extent that fits the slot
}

// locate asks the manager for its blob and finds the slot it sealed,
// setting the store's view of it. key is nil when the manager has no
// record; k is -1 when no slot matches.
func (s *Store) locate() (key []byte, slots [2]slot, k int, err error) {
	blob, err := s.mgr.LoadHashKey()
	noRecord := errors.Is(err, ErrNoRecord)
	if err != nil && !noRecord {
		return nil, slots, -1, fmt.Errorf("%w: LOADHASHKEY: %w", ErrManager, err)
	}
	if !noRecord {
		// The manager answers in 52 bytes when the last 12 are zero
		// (vtpmmgr's compatibility with SHA-1 vTPMs); our blob is 64.
		if len(blob) != 52 && len(blob) != blobLen {
			return nil, slots, -1, fmt.Errorf("%w: LOADHASHKEY returned %d bytes, want %d", ErrManager, len(blob), blobLen)
		}
		key = make([]byte, blobLen)
		copy(key, blob)
	}
	for i := range slots {
		if slots[i], err = s.readSlot(i); err != nil {
			return nil, slots, -1, err
		}
	}
	k = -1
	if key != nil {
		for i := range slots {
			if slots[i].ok && subtle.ConstantTimeCompare(slots[i].sum[:], key[keyLen:]) == 1 {
				k = i
				break
			}
		}
		key = key[:keyLen]
	}
	s.known, s.cur, s.curGen = true, k, 0
	if k >= 0 {
		if h, err := decodeHeader(slots[k].hdr); err == nil {
			s.curGen = h.gen
		}
	}
	s.stats.Slot, s.stats.Generation = s.cur, s.curGen
	return key, slots, k, nil
}

func (s *Store) start(i int) uint64 { return uint64(i) * s.slotSectors }

func (s *Store) readSlot(i int) (slot, error) {
	var sl slot
	hdr := make([]byte, s.ss)
	if err := s.dev.ReadAt(hdr, s.start(i)); err != nil {
		return sl, fmt.Errorf("vstate: reading slot %d header: %w", i, err)
	}
	sl.hdr, sl.raw = hdr, hdr
	n := int64(rawCtLen(hdr))
	if n < tagLen || n > int64(s.maxCt) {
		return sl, nil
	}
	sl.raw = make([]byte, s.ss+s.roundUp(int(n)))
	copy(sl.raw, hdr)
	sl.hdr = sl.raw[:s.ss]
	if err := s.dev.ReadAt(sl.raw[s.ss:], s.start(i)+1); err != nil {
		return sl, fmt.Errorf("vstate: reading slot %d: %w", i, err)
	}
	sl.sum, sl.ok = sha256.Sum256(sl.raw), true
	return sl, nil
}

func (s *Store) roundUp(n int) int { return (n + s.ss - 1) / s.ss * s.ss }

// unseal checks the header of the slot the manager sealed and decrypts it.
func (s *Store) unseal(sl slot, k int, key []byte) ([]byte, error) {
	h, err := decodeHeader(sl.hdr)
	switch {
	case err != nil:
		return nil, err
	case h.kind != kindState:
		return nil, fmt.Errorf("slot holds a marker, not a state")
	case int(h.slot) != k:
		return nil, fmt.Errorf("header names slot %d", h.slot)
	case h.sectorSize != uint32(s.ss) || uint64(h.slotSectors) != s.slotSectors:
		return nil, fmt.Errorf("written for %d-sector slots of %d-byte sectors, this disk has %d-sector slots of %d-byte sectors",
			h.slotSectors, h.sectorSize, s.slotSectors, s.ss)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	state, err := aead.Open(nil, h.nonce[:], sl.raw[s.ss:s.ss+int(h.ctLen)], sl.raw[:hdrLen])
	if err != nil {
		return nil, fmt.Errorf("decryption failed: %w", err)
	}
	return state, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Save seals state into the slot the manager does not point to, flushes,
// and then has the manager record the new key and hash. Until SAVEHASHKEY
// succeeds the previous state stays the loadable one; on any error it
// still is, or — if the manager committed but its answer was lost — the
// new one is, and the next Save asks the manager which before writing.
func (s *Store) Save(state []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.armed {
		if s.loadErr == nil {
			return fmt.Errorf("%w: Load was not called", ErrNotLoaded)
		}
		return fmt.Errorf("%w: Load failed: %w", ErrNotLoaded, s.loadErr)
	}
	if len(state) > s.MaxState() {
		return fmt.Errorf("%w: %d bytes, a %d-byte slot holds at most %d", ErrTooLarge, len(state), int(s.slotSectors)*s.ss, s.MaxState())
	}
	if !s.known {
		if _, _, _, err := s.locate(); err != nil {
			return err
		}
	}
	// A first save (no slot the manager vouches for) writes slot 0 and,
	// once acknowledged, a marker in slot 1 (§4).
	first := s.cur < 0
	target, gen := 0, uint64(1)
	if !first {
		target, gen = 1-s.cur, s.curGen+1
	}

	var secret [keyLen + nonceLen]byte
	if _, err := io.ReadFull(s.rnd, secret[:]); err != nil {
		return fmt.Errorf("vstate: random key: %w", err)
	}
	key := secret[:keyLen]
	h := header{
		kind: kindState, slot: uint8(target), sectorSize: uint32(s.ss),
		slotSectors: uint32(s.slotSectors), ctLen: uint32(len(state) + tagLen), gen: gen,
	}
	copy(h.nonce[:], secret[keyLen:])
	buf := make([]byte, s.ss+s.roundUp(int(h.ctLen)))
	h.encode(buf)
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	// The header is the additional data: its generation, geometry and
	// length are authenticated with the state, not just hashed.
	aead.Seal(buf[s.ss:s.ss], h.nonce[:], state, buf[:hdrLen])
	sum := sha256.Sum256(buf)

	st := SaveStats{Slot: target, Generation: gen, StateBytes: len(state),
		PayloadOffset: int64(s.start(target)+1) * int64(s.ss)}
	t0 := time.Now()
	err = s.write(&st, target, buf)
	st.Disk = time.Since(t0)
	s.stats.BytesWritten += uint64(st.BytesWritten)
	s.stats.Disk += st.Disk
	if err != nil {
		return fmt.Errorf("vstate: writing slot %d (the previous state is intact): %w", target, err)
	}

	blob := make([]byte, 0, blobLen)
	blob = append(append(blob, key...), sum[:]...)
	t1 := time.Now()
	err = s.mgr.SaveHashKey(blob)
	st.Manager = time.Since(t1)
	s.stats.Manager += st.Manager
	if err != nil {
		s.known = false
		return fmt.Errorf("%w: SAVEHASHKEY: %w", ErrManager, err)
	}
	s.cur, s.curGen = target, gen

	if first {
		t2 := time.Now()
		st.MarkerErr = s.writeMarker(&st, 1-target, gen)
		st.Disk += time.Since(t2)
	}
	s.stats.Slot, s.stats.Generation = s.cur, s.curGen
	s.stats.Saves++
	s.stats.Last = st
	return nil
}

// write puts buf in slot target and flushes.
func (s *Store) write(st *SaveStats, target int, buf []byte) error {
	if err := s.dev.WriteAt(buf, s.start(target)); err != nil {
		return err
	}
	st.BytesWritten += len(buf)
	return s.dev.Flush()
}

// writeMarker records in slot i that the first save, in the other slot,
// was acknowledged by the manager. It only matters if the manager later
// loses its record: the disk then reads as claimed, not as fresh.
func (s *Store) writeMarker(st *SaveStats, i int, gen uint64) error {
	sec := make([]byte, s.ss)
	h := header{kind: kindMarker, slot: uint8(i), sectorSize: uint32(s.ss), slotSectors: uint32(s.slotSectors), gen: gen}
	h.encode(sec)
	if err := s.dev.WriteAt(sec, s.start(i)); err != nil {
		return err
	}
	st.BytesWritten += s.ss
	s.stats.BytesWritten += uint64(s.ss)
	return s.dev.Flush()
}

// Stats returns cumulative save figures.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// claimed says why a disk the manager has no record for must not be
// treated as blank, or "" if it may. A slot with a sound header of
// generation 2 or more, or a first-save marker, was acknowledged by some
// manager; a lone generation-1 slot without a marker is a first save the
// manager never committed, and a torn header is a save cut short.
func claimed(slots [2]slot) string {
	for i, sl := range slots {
		h, err := decodeHeader(sl.hdr)
		if err == nil && (h.kind == kindMarker || h.gen >= 2) {
			return fmt.Sprintf("slot %d holds %s", i, describeHeader(h))
		}
	}
	return ""
}

func describe(slots [2]slot) string {
	var b strings.Builder
	for i, sl := range slots {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "slot %d: ", i)
		h, err := decodeHeader(sl.hdr)
		switch {
		case err == nil:
			b.WriteString(describeHeader(h))
		case isZero(sl.hdr):
			b.WriteString("blank")
		case !hasMagic(sl.hdr):
			b.WriteString("not a vstate slot")
		default:
			fmt.Fprintf(&b, "damaged header (%v)", err)
		}
	}
	return b.String()
}

func describeHeader(h header) string {
	if h.kind == kindMarker {
		return fmt.Sprintf("a first-save marker of generation %d", h.gen)
	}
	return fmt.Sprintf("state generation %d (%d bytes)", h.gen, h.ctLen-tagLen)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
