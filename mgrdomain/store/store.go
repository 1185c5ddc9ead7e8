package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
)

// Options tune Open.
type Options struct {
	// MinCounter is the hardware monotonic counter's current value. The
	// newest intact state must bind a counter ≥ MinCounter, or Open fails
	// with ErrRollback. Zero disables the check in effect.
	MinCounter uint64
	// AllowRollback opens the newest intact state even if its counter is
	// below MinCounter: an explicit recovery step for an operator, never a
	// default.
	AllowRollback bool
}

// Info describes an open store.
type Info struct {
	Generation uint64
	Counter    uint64 // the counter value bound in the current superblock
	Records    uint64
	Height     int
	TotalPages uint64
	UsedPages  uint64 // pages held by the current and the previous state
	TreePages  uint64 // pages of the current state's tree
	// FellBack is set when the newest superblock on disk was unusable and
	// an older state was opened; Rejected says why.
	FellBack bool
	Rejected []error
	// PreviousIntact reports whether the previous state's branch pages
	// were readable at open (the fallback copy).
	PreviousIntact bool
}

// Store is an open store. Its methods are safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	dev   Device
	k     *keys
	id    [16]byte
	ss    int
	spp   uint64 // sectors per page
	total uint64 // pages

	gen     uint64
	counter uint64
	root    *node
	height  int
	records uint64

	used    []uint64 // page bitmap: current + previous state + in flight
	nUsed   uint64
	cursor  uint64
	pending []uint64 // pages only the previous state uses; freed after the next commit
	nextTx  uint64
	tree    uint64 // pages in the current tree
	broken  error
	info    Info

	// leafCap and branchCap are the split thresholds: the physical
	// capacities, lowered by tests to get tall trees from few records.
	leafCap, branchCap int

	pgbuf []byte // page I/O buffer, used under mu
}

func checkDevice(dev Device) (ss int, spp uint64, pages uint64, err error) {
	ss = dev.SectorSize()
	if ss < 512 || ss > PageSize || ss&(ss-1) != 0 {
		return 0, 0, 0, fmt.Errorf("store: sector size %d unsupported (want a power of two, 512..%d)", ss, PageSize)
	}
	spp = uint64(PageSize / ss)
	return ss, spp, dev.Sectors() / spp, nil
}

func newStore(dev Device, k *keys, id [16]byte, ss int, spp, total uint64) *Store {
	return &Store{
		dev: dev, k: k, id: id, ss: ss, spp: spp, total: total,
		used:    make([]uint64, (total+63)/64),
		leafCap: maxLeafEnts, branchCap: maxBranchEnts,
		pgbuf: make([]byte, PageSize),
	}
}

// Format writes an empty store over the whole device, binding counter
// (the hardware counter's current value), and returns it open. Anything
// previously on the device is lost.
func Format(dev Device, key []byte, counter uint64) (*Store, error) {
	ss, spp, total, err := checkDevice(dev)
	if err != nil {
		return nil, err
	}
	if total < firstData+2 {
		return nil, fmt.Errorf("store: device of %d sectors is too small (need %d pages of %d bytes)", dev.Sectors(), firstData+2, PageSize)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("store: store ID: %w", err)
	}
	k, err := deriveKeys(key, id)
	if err != nil {
		return nil, err
	}
	s := newStore(dev, k, id, ss, spp, total)
	s.markUsed(0)
	s.markUsed(1)
	// Slot 0 is wiped first: a superblock left by an earlier format under
	// the same storage key would otherwise still verify.
	if err := dev.WriteAt(make([]byte, ss), 0); err != nil {
		return nil, fmt.Errorf("store: format: wiping superblock 0: %w", err)
	}
	if err := dev.Flush(); err != nil {
		return nil, fmt.Errorf("store: format: flush: %w", err)
	}
	s.gen, s.counter = 0, counter
	if err := s.writeSuperblock(1, counter, nil, 0, 0); err != nil {
		return nil, fmt.Errorf("store: format: %w", err)
	}
	s.gen = 1
	s.info = Info{PreviousIntact: false}
	return s, nil
}

// Open opens the store on dev with the storage key, choosing the newest
// intact state (see docs/manager-storage.md, "Opening").
func Open(dev Device, key []byte, opt Options) (*Store, error) {
	ss, spp, devPages, err := checkDevice(dev)
	if err != nil {
		return nil, err
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("store: storage key of %d bytes, want %d", len(key), KeySize)
	}
	if devPages < firstData {
		return nil, fmt.Errorf("%w: device of %d sectors cannot hold the superblocks", ErrTruncated, dev.Sectors())
	}
	type cand struct {
		slot int
		sb   *superblock
		k    *keys
	}
	var cands []cand
	var errs []error
	buf := make([]byte, ss)
	for slot := range sbSlots {
		if err := dev.ReadAt(buf, uint64(slot)*spp); err != nil {
			return nil, fmt.Errorf("store: reading superblock %d: %w", slot, err)
		}
		id, err := peekSuperblock(buf)
		if err != nil {
			errs = append(errs, fmt.Errorf("superblock %d: %w", slot, err))
			continue
		}
		k, err := deriveKeys(key, id)
		if err != nil {
			return nil, err
		}
		sb, err := decodeSuperblock(buf, k)
		if err == nil && sb.gen%sbSlots != uint64(slot) {
			err = fmt.Errorf("%w: generation %d found in slot %d", ErrCorrupt, sb.gen, slot)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("superblock %d: %w", slot, err))
			continue
		}
		cands = append(cands, cand{slot, sb, k})
	}
	if len(cands) == 2 && cands[0].sb.storeID != cands[1].sb.storeID {
		// Both verify but belong to different stores under this key: only
		// possible if a format was interrupted; the newer one is current.
		slices.SortFunc(cands, func(a, b cand) int { return -cmpU64(a.sb.gen, b.sb.gen) })
		errs = append(errs, fmt.Errorf("superblock %d: %w: belongs to another store", cands[1].slot, ErrCorrupt))
		cands = cands[:1]
	}
	slices.SortFunc(cands, func(a, b cand) int { return -cmpU64(a.sb.gen, b.sb.gen) })
	for i, c := range cands {
		sb := c.sb
		if sb.totalPages > devPages {
			errs = append(errs, fmt.Errorf("superblock %d (generation %d): %w: store has %d pages, device %d", c.slot, sb.gen, ErrTruncated, sb.totalPages, devPages))
			continue
		}
		if sb.counter < opt.MinCounter && !opt.AllowRollback {
			errs = append(errs, fmt.Errorf("superblock %d (generation %d): %w: disk binds counter %d, hardware counter is %d", c.slot, sb.gen, ErrRollback, sb.counter, opt.MinCounter))
			continue
		}
		s := newStore(dev, c.k, sb.storeID, ss, spp, sb.totalPages)
		s.markUsed(0)
		s.markUsed(1)
		root, err := s.loadTree(sb, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("superblock %d (generation %d): tree: %w", c.slot, sb.gen, err))
			continue
		}
		s.gen, s.counter, s.root, s.height, s.records = sb.gen, sb.counter, root, int(sb.height), sb.records
		s.tree = s.nUsed - firstData
		s.info.FellBack = i > 0
		s.info.Rejected = errs
		// The other state stays intact until the next commit replaces its
		// superblock: keep its pages, and free them after that commit.
		if i == 0 && len(cands) == 2 && cands[1].sb.storeID == sb.storeID {
			var pend []uint64
			_, perr := s.loadTree(cands[1].sb, &pend)
			s.pending = pend
			s.info.PreviousIntact = perr == nil
		}
		return s, nil
	}
	if len(errs) == 0 {
		errs = append(errs, ErrNotFormatted)
	}
	return nil, fmt.Errorf("store: no usable state on disk: %w", errors.Join(errs...))
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadTree reads sb's branch pages (and a root leaf), marks every page
// of the tree used and returns the root. With pend non-nil it is walking
// the previous state: pages already used by the current one are skipped
// (their subtrees are shared) and newly marked pages are appended to
// *pend; a page of the current tree referenced twice is corruption.
func (s *Store) loadTree(sb *superblock, pend *[]uint64) (*node, error) {
	if sb.height == 0 {
		return nil, nil
	}
	var walk func(p uint64, tag [tagLen]byte, level int) (*node, error)
	walk = func(p uint64, tag [tagLen]byte, level int) (*node, error) {
		if p < firstData || p >= s.total {
			return nil, fmt.Errorf("%w: page %d outside the store", ErrCorrupt, p)
		}
		if s.isUsed(p) {
			if pend != nil {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: page %d referenced twice", ErrCorrupt, p)
		}
		s.markUsed(p)
		if pend != nil {
			*pend = append(*pend, p)
		}
		if level == 0 {
			return &node{level: 0, page: p, tag: tag}, nil
		}
		n, err := s.readNode(p, tag, level)
		if err != nil {
			return nil, err
		}
		for i, c := range n.kids {
			if c.level == 0 {
				if s.isUsed(c.page) {
					if pend != nil {
						continue
					}
					return nil, fmt.Errorf("%w: page %d referenced twice", ErrCorrupt, c.page)
				}
				s.markUsed(c.page)
				if pend != nil {
					*pend = append(*pend, c.page)
				}
				continue
			}
			k, err := walk(c.page, c.tag, c.level)
			if err != nil {
				return nil, err
			}
			if k != nil {
				n.kids[i] = k
			}
		}
		return n, nil
	}
	root, err := walk(sb.rootPage, sb.rootTag, int(sb.height)-1)
	if err != nil || root == nil {
		return root, err
	}
	if root.level == 0 && pend == nil {
		// A root leaf is verified now so that open checks the root of
		// every tree, whatever its height.
		return s.readNode(root.page, root.tag, 0)
	}
	return root, nil
}

func (s *Store) isUsed(p uint64) bool { return s.used[p/64]&(1<<(p%64)) != 0 }

func (s *Store) markUsed(p uint64) {
	if !s.isUsed(p) {
		s.used[p/64] |= 1 << (p % 64)
		s.nUsed++
	}
}

func (s *Store) markFree(p uint64) {
	if s.isUsed(p) {
		s.used[p/64] &^= 1 << (p % 64)
		s.nUsed--
	}
}

// alloc returns a page no state on disk refers to, next-fit from a
// rotating cursor so writes spread over the device.
func (s *Store) alloc() (uint64, error) {
	if s.nUsed >= s.total {
		return 0, fmt.Errorf("%w: all %d pages in use", ErrNoSpace, s.total)
	}
	words := uint64(len(s.used))
	w := s.cursor / 64
	for range words + 1 {
		if x := ^s.used[w]; x != 0 {
			p := w*64 + uint64(bits.TrailingZeros64(x))
			if p < s.total {
				s.markUsed(p)
				s.cursor = p + 1
				if s.cursor >= s.total {
					s.cursor = 0
				}
				return p, nil
			}
		}
		w++
		if w >= words {
			w = 0
		}
	}
	return 0, fmt.Errorf("%w: all %d pages in use", ErrNoSpace, s.total)
}

// readNode reads and verifies page p, expected at level with the given tag.
func (s *Store) readNode(p uint64, tag [tagLen]byte, level int) (*node, error) {
	if p < firstData || p >= s.total {
		return nil, fmt.Errorf("%w: page %d outside the store", ErrCorrupt, p)
	}
	buf := make([]byte, PageSize)
	if err := s.dev.ReadAt(buf, p*s.spp); err != nil {
		return nil, fmt.Errorf("store: reading page %d: %w", p, err)
	}
	return openPage(buf, p, tag, level, s.total, s.id, s.k)
}

// leafEntries returns a leaf's entries, reading a stub from disk.
func (s *Store) leafEntries(n *node) ([]entry, error) {
	if n.loaded {
		return n.ents, nil
	}
	l, err := s.readNode(n.page, n.tag, 0)
	if err != nil {
		return nil, err
	}
	return l.ents, nil
}

func (s *Store) writeSuperblock(gen, counter uint64, root *node, height int, records uint64) error {
	sb := &superblock{storeID: s.id, gen: gen, counter: counter, totalPages: s.total, records: records, height: uint32(height)}
	if root != nil {
		sb.rootPage, sb.rootTag = root.page, root.tag
	}
	buf := make([]byte, s.ss)
	encodeSuperblock(buf, sb, s.k)
	if err := s.dev.WriteAt(buf, (gen%sbSlots)*s.spp); err != nil {
		return fmt.Errorf("writing superblock %d (generation %d): %w", gen%sbSlots, gen, err)
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("flushing superblock %d (generation %d): %w", gen%sbSlots, gen, err)
	}
	return nil
}

func childIndex(keys []UUID, k UUID) int {
	// The last child whose lower bound is ≤ k; keys[0] acts as −∞.
	i, _ := slices.BinarySearchFunc(keys, k, func(a, b UUID) int { return bytes.Compare(a[:], b[:]) })
	if i < len(keys) && keys[i] == k {
		return i
	}
	return max(i-1, 0)
}

func leafIndex(ents []entry, k UUID) (int, bool) {
	return slices.BinarySearchFunc(ents, k, func(e entry, k UUID) int { return bytes.Compare(e.key[:], k[:]) })
}

// Get returns the record stored under k, or ErrNotFound.
func (s *Store) Get(k UUID) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return Record{}, s.broken
	}
	n := s.root
	for n != nil && n.level > 0 {
		n = n.kids[childIndex(n.keys, k)]
	}
	if n == nil {
		return Record{}, fmt.Errorf("%w: %x", ErrNotFound, k)
	}
	ents, err := s.leafEntries(n)
	if err != nil {
		return Record{}, err
	}
	i, ok := leafIndex(ents, k)
	if !ok {
		return Record{}, fmt.Errorf("%w: %x", ErrNotFound, k)
	}
	return ents[i].record(), nil
}

// Range calls fn for every record in UUID order until fn returns false.
// It holds the store's lock: fn must not call back into the store.
func (s *Store) Range(fn func(UUID, Record) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	var walk func(n *node) (bool, error)
	walk = func(n *node) (bool, error) {
		if n.level > 0 {
			for _, c := range n.kids {
				if more, err := walk(c); !more || err != nil {
					return more, err
				}
			}
			return true, nil
		}
		ents, err := s.leafEntries(n)
		if err != nil {
			return false, err
		}
		for i := range ents {
			if !fn(ents[i].key, ents[i].record()) {
				return false, nil
			}
		}
		return true, nil
	}
	if s.root == nil {
		return nil
	}
	_, err := walk(s.root)
	return err
}

// Check reads and verifies every page of the current state (an fsck) and
// returns the number of records found.
func (s *Store) Check() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return 0, s.broken
	}
	var count, pages uint64
	var walk func(n *node, lo *UUID) error
	walk = func(n *node, lo *UUID) error {
		pages++
		d, err := s.readNode(n.page, n.tag, n.level)
		if err != nil {
			return err
		}
		if n.level == 0 {
			if len(d.ents) == 0 && s.height > 1 {
				return fmt.Errorf("%w: empty leaf at page %d", ErrCorrupt, n.page)
			}
			if lo != nil && len(d.ents) > 0 && bytes.Compare(d.ents[0].key[:], lo[:]) < 0 {
				return fmt.Errorf("%w: leaf %d holds keys below its separator", ErrCorrupt, n.page)
			}
			count += uint64(len(d.ents))
			return nil
		}
		for i, c := range d.kids {
			var l *UUID
			if i > 0 {
				l = &d.keys[i]
			}
			if err := walk(c, l); err != nil {
				return err
			}
		}
		return nil
	}
	if s.root != nil {
		if err := walk(s.root, nil); err != nil {
			return count, err
		}
	}
	if count != s.records {
		return count, fmt.Errorf("%w: %d records found, superblock says %d", ErrCorrupt, count, s.records)
	}
	if pages != s.tree {
		return count, fmt.Errorf("store: page accounting: tree has %d pages, %d counted", pages, s.tree)
	}
	if want := firstData + s.tree + uint64(len(s.pending)); s.nUsed != want {
		return count, fmt.Errorf("store: page accounting: %d pages marked used, want %d (leak)", s.nUsed, want)
	}
	return count, nil
}

// Len is the number of records.
func (s *Store) Len() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// Counter is the counter value bound in the current superblock. After
// every successful commit the manager brings the hardware counter up to
// this value (one increment).
func (s *Store) Counter() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter
}

// Info describes the open store.
func (s *Store) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.info
	i.Generation, i.Counter, i.Records, i.Height = s.gen, s.counter, s.records, s.height
	i.TotalPages, i.UsedPages, i.TreePages = s.total, s.nUsed, s.tree
	i.Rejected = slices.Clone(i.Rejected)
	return i
}
