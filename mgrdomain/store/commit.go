package store

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
)

// Batch collects changes committed together, atomically.
type Batch struct {
	ops []op
}

type op struct {
	del bool
	key UUID
	rec Record
}

// Put sets k's record in the batch.
func (b *Batch) Put(k UUID, r Record) {
	r.Blob = slices.Clone(r.Blob)
	b.ops = append(b.ops, op{key: k, rec: r})
}

// Delete removes k in the batch; deleting an absent key is a no-op.
func (b *Batch) Delete(k UUID) { b.ops = append(b.ops, op{del: true, key: k}) }

// Len is the number of changes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Put stores r under k and returns once it is durable: one commit.
func (s *Store) Put(k UUID, r Record) error {
	var b Batch
	b.Put(k, r)
	return s.Commit(&b)
}

// Delete removes k's record (ErrNotFound if absent) in one commit.
func (s *Store) Delete(k UUID) error {
	if _, err := s.Get(k); err != nil {
		return err
	}
	var b Batch
	b.Delete(k)
	return s.Commit(&b)
}

// Rebind commits the current state unchanged with a new counter value:
// for the manager after its hardware counter had to be recreated (the
// new counter starts at whatever value the TPM gives it).
func (s *Store) Rebind(counter uint64) error {
	return s.commit(nil, &counter)
}

// Commit applies the batch atomically and durably: after it returns nil
// the new state survives a power cut; if it fails, the store still holds
// the state before it (unless the error is ErrBroken: reopen). Each commit
// binds the next counter value (Counter()+1).
func (s *Store) Commit(b *Batch) error {
	return s.commit(b.ops, nil)
}

// tx is a commit in progress. It owns the nodes it creates (owner ==
// id) and mutates them in place; shared nodes are cloned first.
type tx struct {
	s      *Store
	id     uint64
	root   *node
	height int
	count  uint64
	freed  []uint64 // pages of the current state this commit replaces
	alloc  []uint64 // pages this commit wrote
}

func (s *Store) commit(ops []op, counter *uint64) error {
	entries := make([]entry, len(ops))
	for i, o := range ops {
		if o.del {
			continue
		}
		e, err := makeEntry(o.key, o.rec)
		if err != nil {
			return err
		}
		entries[i] = e
	}
	if len(ops) == 0 && counter == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	s.nextTx++
	t := &tx{s: s, id: s.nextTx, root: s.root, height: s.height, count: s.records}
	for i, o := range ops {
		var err error
		if o.del {
			err = t.delete(o.key)
		} else {
			err = t.put(entries[i])
		}
		if err != nil {
			return fmt.Errorf("store: commit: %w", err)
		}
	}
	// Phase 1: the new pages, bottom-up, to pages no superblock on disk
	// refers to; then a barrier so they are durable before anything
	// points at them.
	if t.root != nil {
		if err := t.write(t.root); err != nil {
			t.abort()
			return fmt.Errorf("store: commit: %w", err)
		}
	}
	if len(t.alloc) > 0 {
		if err := s.dev.Flush(); err != nil {
			t.abort()
			return fmt.Errorf("store: commit: flushing pages: %w", err)
		}
	}
	// Phase 2: the superblock into the older slot, and a barrier. If this
	// fails we cannot know which superblock the disk holds.
	next := s.counter + 1
	if counter != nil {
		next = *counter
	}
	if err := s.writeSuperblock(s.gen+1, next, t.root, t.height, t.count); err != nil {
		s.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		return s.broken
	}
	// The state two commits back is gone from disk: free what only it used.
	for _, p := range s.pending {
		s.markFree(p)
	}
	s.pending = t.freed
	s.tree = s.tree + uint64(len(t.alloc)) - uint64(len(t.freed))
	s.gen, s.counter, s.root, s.height, s.records = s.gen+1, next, t.root, t.height, t.count
	s.info.FellBack, s.info.Rejected = false, nil
	s.info.PreviousIntact = true
	return nil
}

// abort returns the pages a failed commit allocated; nothing on disk
// refers to them.
func (t *tx) abort() {
	for _, p := range t.alloc {
		t.s.markFree(p)
	}
}

// mutable returns a node this transaction may change: n itself if the
// transaction created it, else a copy, whose original page is released
// when the commit succeeds.
func (t *tx) mutable(n *node) (*node, error) {
	if n.owner == t.id {
		return n, nil
	}
	c := &node{level: n.level, owner: t.id, loaded: true}
	if n.level == 0 {
		ents, err := t.s.leafEntries(n)
		if err != nil {
			return nil, err
		}
		c.ents = slices.Clone(ents)
	} else {
		c.keys = slices.Clone(n.keys)
		c.kids = slices.Clone(n.kids)
	}
	if n.page != 0 {
		t.freed = append(t.freed, n.page)
	}
	return c, nil
}

func firstKey(n *node) UUID {
	if n.level == 0 {
		return n.ents[0].key
	}
	return n.keys[0]
}

func (t *tx) put(e entry) error {
	if t.root == nil {
		t.root = &node{level: 0, owner: t.id, loaded: true, ents: []entry{e}}
		t.height = 1
		t.count++
		return nil
	}
	n, right, added, err := t.insert(t.root, e)
	if err != nil {
		return err
	}
	if added {
		t.count++
	}
	if right != nil {
		if t.height >= maxHeight {
			return fmt.Errorf("tree height would exceed %d", maxHeight)
		}
		n = &node{level: n.level + 1, owner: t.id, loaded: true, keys: []UUID{firstKey(n), firstKey(right)}, kids: []*node{n, right}}
		t.height++
	}
	t.root = n
	return nil
}

// insert puts e under n and returns n's replacement and, if it split, the
// new right sibling.
func (t *tx) insert(n *node, e entry) (*node, *node, bool, error) {
	m, err := t.mutable(n)
	if err != nil {
		return nil, nil, false, err
	}
	if m.level == 0 {
		i, found := leafIndex(m.ents, e.key)
		if found {
			m.ents[i] = e
			return m, nil, false, nil
		}
		m.ents = slices.Insert(m.ents, i, e)
		if len(m.ents) <= t.s.leafCap {
			return m, nil, true, nil
		}
		h := len(m.ents) / 2
		r := &node{level: 0, owner: t.id, loaded: true, ents: slices.Clone(m.ents[h:])}
		m.ents = slices.Clip(m.ents[:h])
		return m, r, true, nil
	}
	i := childIndex(m.keys, e.key)
	if bytes.Compare(e.key[:], m.keys[i][:]) < 0 {
		// Only for i == 0: keep every key a true lower bound, or a later
		// split could produce a separator equal to it.
		m.keys[i] = e.key
	}
	c, r, added, err := t.insert(m.kids[i], e)
	if err != nil {
		return nil, nil, false, err
	}
	m.kids[i] = c
	if r == nil {
		return m, nil, added, nil
	}
	m.kids = slices.Insert(m.kids, i+1, r)
	m.keys = slices.Insert(m.keys, i+1, firstKey(r))
	if len(m.kids) <= t.s.branchCap {
		return m, nil, added, nil
	}
	h := len(m.kids) / 2
	rb := &node{level: m.level, owner: t.id, loaded: true, keys: slices.Clone(m.keys[h:]), kids: slices.Clone(m.kids[h:])}
	m.keys, m.kids = slices.Clip(m.keys[:h]), slices.Clip(m.kids[:h])
	return m, rb, added, nil
}

func (t *tx) delete(k UUID) error {
	if t.root == nil {
		return nil
	}
	n, removed, err := t.remove(t.root, k)
	if err != nil || !removed {
		return err
	}
	t.count--
	// Collapse a root with a single child; an empty tree has no root.
	for n != nil && n.level > 0 && len(n.kids) == 1 {
		if n.page != 0 {
			t.freed = append(t.freed, n.page)
		}
		n = n.kids[0]
		t.height--
	}
	if n == nil {
		t.height = 0
	}
	t.root = n
	return nil
}

// remove deletes k under n. It returns n's replacement (nil if it became
// empty) and whether k was there; an unchanged subtree is not copied.
func (t *tx) remove(n *node, k UUID) (*node, bool, error) {
	if n.level == 0 {
		ents, err := t.s.leafEntries(n)
		if err != nil {
			return nil, false, err
		}
		if _, ok := leafIndex(ents, k); !ok {
			return n, false, nil
		}
		m, err := t.mutable(n)
		if err != nil {
			return nil, false, err
		}
		i, _ := leafIndex(m.ents, k)
		m.ents = slices.Delete(m.ents, i, i+1)
		if len(m.ents) == 0 {
			return nil, true, nil
		}
		return m, true, nil
	}
	i := childIndex(n.keys, k)
	c, removed, err := t.remove(n.kids[i], k)
	if err != nil || !removed {
		return n, removed, err
	}
	m, err := t.mutable(n)
	if err != nil {
		return nil, false, err
	}
	if c != nil {
		m.kids[i] = c
		return m, true, nil
	}
	m.kids = slices.Delete(m.kids, i, i+1)
	m.keys = slices.Delete(m.keys, i, i+1)
	if len(m.kids) == 0 {
		return nil, true, nil
	}
	return m, true, nil
}

// write seals and writes every unwritten node under n, children first,
// so each parent records its children's final page numbers and tags.
func (t *tx) write(n *node) error {
	if n.page != 0 {
		return nil
	}
	for _, c := range n.kids {
		if err := t.write(c); err != nil {
			return err
		}
	}
	p, err := t.s.alloc()
	if err != nil {
		return err
	}
	t.alloc = append(t.alloc, p)
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("page nonce: %w", err)
	}
	buf := t.s.pgbuf
	tag := sealPage(buf, n, p, t.s.id, t.s.k, nonce[:])
	if err := t.s.dev.WriteAt(buf, p*t.s.spp); err != nil {
		return fmt.Errorf("writing page %d: %w", p, err)
	}
	n.page, n.tag = p, tag
	if n.level == 0 {
		// Leaves are not cached: the manager domain's memory holds the
		// branches (≈ 1.5% of the tree) and reads a leaf per lookup.
		n.ents, n.loaded = nil, false
	}
	return nil
}
