package tpm12

// Monotonic counters, Part 3 §25: eight slots, as in libtpms. A
// counter's countID is its slot; a released slot keeps its count, and a
// new counter starts one above the largest count of any slot, so no
// counter value repeats. One counter may be incremented per boot cycle
// (the first incremented after Startup, TPM_STCLEAR_DATA.countID).
const (
	countersMax     = 8
	tagCounterValue = 0x000E     // TPM_TAG_COUNTER_VALUE
	countIDNull     = 0xFFFFFFFF // TPM_COUNT_ID_NULL
	// countIDIllegal marks the active counter released: no counter can
	// be incremented until the next Startup(ST_CLEAR).
	countIDIllegal = 0xFFFFFFFE
)

// counter is one slot of TPM_PERMANENT_DATA.monotonicCounter.
type counter struct {
	Valid bool
	Label [4]byte
	Count uint32
	Auth  digest
}

// counterValue is TPM_COUNTER_VALUE, Part 2 §21.3.
type counterValue struct {
	Label [4]byte
	Count uint32
}

func (v *counterValue) marshal(w *writer) {
	w.u16(tagCounterValue)
	w.bytes(v.Label[:])
	w.u32(v.Count)
}

// counterSlot returns the created counter countID names.
func (t *TPM) counterSlot(countID uint32) (*counter, error) {
	if countID >= uint32(len(t.ps.Counters)) || !t.ps.Counters[countID].Valid {
		return nil, rcE(rcBadCounter, "counter %#x", countID)
	}
	return &t.ps.Counters[countID], nil
}

func (t *TPM) countersFree() uint32 {
	n := uint32(countersMax - len(t.ps.Counters))
	for _, c := range t.ps.Counters {
		if !c.Valid {
			n++
		}
	}
	return n
}

type createCounterIn struct {
	EncAuth digest
	Label   [4]byte
}

func (p *createCounterIn) unmarshal(r *reader) {
	p.EncAuth = r.digest()
	copy(p.Label[:], r.take(4))
}

type createCounterOut struct {
	CountID uint32
	Value   counterValue
}

func (o *createCounterOut) marshal(w *writer) {
	w.u32(o.CountID)
	o.Value.marshal(w)
}

// createCounter is TPM_CreateCounter, Part 3 §25.1: the owner, on an
// OSAP session, creates a counter whose authData is encAuth under the
// session's ADIP.
func (t *TPM) createCounter(c *call, in *createCounterIn) (*createCounterOut, error) {
	a := &c.auth[0]
	if s := t.sessions[a.handle]; s != nil && s.pid != pidOSAP {
		return nil, rcE(rcBadMode, "TPM_CreateCounter needs an OSAP session")
	}
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	a.cont = false
	for len(t.ps.Counters) < countersMax {
		t.ps.Counters = append(t.ps.Counters, counter{})
	}
	id := -1
	var next uint32
	for i, s := range t.ps.Counters {
		if !s.Valid && id < 0 {
			id = i
		}
		next = max(next, s.Count)
	}
	if id < 0 {
		return nil, rcE(rcResources, "no free counter")
	}
	next++
	t.ps.Counters[id] = counter{Valid: true, Label: in.Label, Count: next, Auth: adipDecrypt(a.sess, in.EncAuth)}
	t.nvDirty = true
	return &createCounterOut{CountID: uint32(id), Value: counterValue{Label: in.Label, Count: next}}, nil
}

type countIDIn struct{ CountID uint32 }

func (p *countIDIn) unmarshal(r *reader) { p.CountID = r.u32() }

// incrementCounter is TPM_IncrementCounter, Part 3 §25.2, authorized by
// the counter's authData: the first counter incremented after Startup
// becomes the only one that may be until the next Startup(ST_CLEAR).
func (t *TPM) incrementCounter(c *call, in *countIDIn) (*counterValue, error) {
	if t.activeCounter != countIDNull && t.activeCounter != in.CountID {
		return nil, rcE(rcBadCounter, "counter %#x is active", t.activeCounter)
	}
	s, err := t.counterSlot(in.CountID)
	if err != nil {
		return nil, err
	}
	if err := t.authorize(c, 0, s.Auth, etCounter, in.CountID); err != nil {
		return nil, err
	}
	t.activeCounter = in.CountID
	s.Count++
	t.nvDirty = true
	return &counterValue{Label: s.Label, Count: s.Count}, nil
}

// readCounter is TPM_ReadCounter, Part 3 §25.3.
func (t *TPM) readCounter(_ *call, in *countIDIn) (*counterValue, error) {
	s, err := t.counterSlot(in.CountID)
	if err != nil {
		return nil, err
	}
	return &counterValue{Label: s.Label, Count: s.Count}, nil
}

// releaseCounter is TPM_ReleaseCounter, Part 3 §25.4, authorized by the
// counter's authData.
func (t *TPM) releaseCounter(c *call, in *countIDIn) (*none, error) {
	s, err := t.counterSlot(in.CountID)
	if err != nil {
		return nil, err
	}
	if err := t.authorize(c, 0, s.Auth, etCounter, in.CountID); err != nil {
		return nil, err
	}
	t.release(c, in.CountID)
	return &none{}, nil
}

// releaseCounterOwner is TPM_ReleaseCounterOwner, Part 3 §25.5,
// authorized by the owner.
func (t *TPM) releaseCounterOwner(c *call, in *countIDIn) (*none, error) {
	if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, err
	}
	if _, err := t.counterSlot(in.CountID); err != nil {
		return nil, err
	}
	t.release(c, in.CountID)
	return &none{}, nil
}

// release invalidates a counter, keeping its count, and ends its
// session.
func (t *TPM) release(c *call, id uint32) {
	s := &t.ps.Counters[id]
	s.Valid, s.Auth, s.Label = false, digest{}, [4]byte{}
	if t.activeCounter == id {
		t.activeCounter = countIDIllegal
	}
	c.auth[0].cont = false
	t.nvDirty = true
}
