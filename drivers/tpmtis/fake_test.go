package tpmtis

import (
	"encoding/binary"
	"sync"
	"time"
)

// fakeClock is virtual time: Sleep advances it, so every timeout in the
// driver is reached in microseconds of real time and deterministically.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// FIFO states of QEMU's tpm_tis_common.c (TIS 1.3 Figure 7 without the
// interrupt paths).
const (
	fsIdle = iota
	fsReady
	fsReception
	fsExecution
	fsCompletion
)

const noLocality = -1

type fakeLoc struct {
	access uint8
	sts    uint32
	state  int
}

// fakeTIS models QEMU's tpm-tis register file for all five localities, with
// the same rules a driver trips over on QEMU:
//   - STS, FIFO, INT_* writes are ignored unless the locality is active, and
//     STS reads all ones for a non-active locality;
//   - every write to locality 4's page is dropped;
//   - tpmGo is ignored unless the command is complete (Expect clear);
//   - burstCount from a 1-byte STS read is capped at 0xFF;
//   - one 4096-byte buffer shared by all localities;
//   - the response is served up to min(its header length, buffer size).
//
// The backend is a handler function standing in for swtpm.
type fakeTIS struct {
	mu      sync.Mutex
	clk     *fakeClock
	family  Family
	bufSize int

	active int
	loc    [maxLocalities]fakeLoc
	buf    []byte
	rwOff  int

	cmdLocality int
	doneAt      time.Time
	pendingRsp  []byte

	handler func(locality int, cmd []byte) []byte

	// Faults.
	allOnes   bool          // nothing decodes the address: reads all ones, writes vanish
	neverDone bool          // the backend never finishes a command until it is cancelled
	burstZero bool          // burstCount always reads 0
	expectCap int           // if > 0, Expect drops once this many command bytes arrived
	execTime  time.Duration // how long the backend takes per command

	// Another OS holding a locality until a virtual deadline.
	holder      int
	holderUntil time.Time

	// Accounting.
	touched  map[int]bool // localities whose page was accessed
	commands int
	cancels  int
}

func newFakeTIS(clk *fakeClock, f Family, handler func(int, []byte) []byte) *fakeTIS {
	m := &fakeTIS{clk: clk, family: f, bufSize: MaxBuffer, active: noLocality, buf: make([]byte, MaxBuffer),
		handler: handler, holder: noLocality, touched: map[int]bool{}}
	fam := uint32(0)
	if f == Family20 {
		fam = 1 << stsFamilyShift
	}
	for i := range m.loc {
		m.loc[i] = fakeLoc{access: accessRegValidSts, sts: fam, state: fsIdle}
	}
	return m
}

// page is the Registers view of one locality, as Open would give the driver.
type page struct {
	m   *fakeTIS
	loc int
}

func (m *fakeTIS) page(loc int) page { return page{m, loc} }

func (p page) Read8(off uint32) uint8 { return uint8(p.m.read(p.loc, off, 1)) }
func (p page) Read32(off uint32) uint32 {
	return p.m.read(p.loc, off, 4)
}
func (p page) Write8(off uint32, v uint8)   { p.m.write(p.loc, off, uint32(v), 1) }
func (p page) Write32(off uint32, v uint32) { p.m.write(p.loc, off, v, 4) }

// holdLocality makes locality l active, as another OS that got there first,
// and keeps it until the virtual deadline (zero: forever).
func (m *fakeTIS) holdLocality(l int, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.newActive(l)
	m.holder, m.holderUntil = l, until
}

func (m *fakeTIS) stsSet(l int, flags uint32) {
	m.loc[l].sts &= stsSelfTestDone | stsFamilyMask<<stsFamilyShift
	m.loc[l].sts |= flags
}

func (m *fakeTIS) newActive(l int) {
	if m.active != noLocality && m.active != l {
		m.loc[m.active].access &^= accessActiveLocality | accessRequestUse
	}
	m.active = l
	if l != noLocality {
		m.loc[l].access |= accessActiveLocality
		m.loc[l].access &^= accessRequestUse
	}
}

// tick advances the backend and the other OS to the current virtual time.
func (m *fakeTIS) tick() {
	now := m.clk.Now()
	l := m.cmdLocality
	if m.loc[l].state == fsExecution && !m.neverDone && !now.Before(m.doneAt) {
		m.complete()
	}
	if m.holder != noLocality && !m.holderUntil.IsZero() && !now.Before(m.holderUntil) {
		m.release(m.holder)
		m.holder = noLocality
	}
}

func (m *fakeTIS) complete() {
	l := m.cmdLocality
	clear(m.buf)
	copy(m.buf, m.pendingRsp)
	m.stsSet(l, stsValid|stsDataAvail)
	m.loc[l].state = fsCompletion
	m.rwOff = 0
}

func (m *fakeTIS) release(l int) {
	if m.active != l {
		m.loc[l].access &^= accessRequestUse
		return
	}
	next := noLocality
	for c := maxLocalities - 1; c >= 0; c-- {
		if m.loc[c].access&accessRequestUse != 0 {
			next = c
			break
		}
	}
	m.newActive(next)
}

func (m *fakeTIS) respLen() int {
	return min(int(binary.BigEndian.Uint32(m.buf[2:6])), m.bufSize)
}

func (m *fakeTIS) read(l int, addr uint32, size int) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.touched[l] = true
	if m.allOnes {
		return 0xFFFFFFFF >> (32 - 8*size)
	}
	m.tick()
	off, shift := addr&0xFFC, (addr&3)*8
	val := uint32(0xFFFFFFFF)
	switch off {
	case regAccess:
		val = uint32(m.loc[l].access)
		for c := range m.loc {
			if c != l && m.loc[c].access&accessRequestUse != 0 {
				val |= accessPendingRequest
			}
		}
		val |= accessEstablishment
	case regIntfCap:
		if m.family == Family20 {
			val = intfVersionPTPFIF<<intfVersionShift | 3<<9 | 1<<4 | 0x87
		} else {
			val = intfVersionTIS13<<intfVersionShift | 3<<9 | 1<<4 | 0x87
		}
	case regSts:
		if m.active == l {
			var avail int
			if m.loc[l].sts&stsDataAvail != 0 {
				avail = (m.respLen() - m.rwOff) & 0xFFFF
			} else {
				avail = m.bufSize - m.rwOff
				if size == 1 && avail > 0xFF {
					avail = 0xFF
				}
			}
			if m.burstZero {
				avail = 0
			}
			val = uint32(avail)<<stsBurstShift | m.loc[l].sts
		}
	case regDataFIFO:
		if m.active == l {
			val = 0
			for i := 0; i < size; i++ {
				v := uint32(0xFF)
				if m.loc[l].state == fsCompletion && m.loc[l].sts&stsDataAvail != 0 {
					v = uint32(m.buf[m.rwOff])
					m.rwOff++
					if m.rwOff >= m.respLen() {
						m.stsSet(l, stsValid)
					}
				}
				val |= v << (8 * i)
			}
			shift = 0
		}
	case regInterface:
		if m.family == Family20 {
			val = ifTypeFIFO | 1<<8 | 1<<13
		} else {
			val = ifTypeTIS13
		}
	case regDIDVID:
		val = 0x0001<<16 | 0x1014
	case 0xF04: // TPM_RID shares the word at 0xF04
		val = 0x01
	}
	return (val >> shift) & (0xFFFFFFFF >> (32 - 8*size))
}

func (m *fakeTIS) write(l int, addr uint32, val uint32, size int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.touched[l] = true
	if m.allOnes || l == 4 {
		return
	}
	m.tick()
	off, shift := addr&0xFFC, (addr&3)*8
	val <<= shift
	switch off {
	case regAccess:
		if val&accessActiveLocality != 0 {
			m.release(l)
		}
		if val&accessBeenSeized != 0 {
			m.loc[l].access &^= accessBeenSeized
		}
		// Seize: only from a lower active locality (TIS §5.6.5).
		if val&accessSeize != 0 && m.active != noLocality && l > m.active {
			m.loc[m.active].access |= accessBeenSeized
			if m.holder == m.active {
				m.holder = noLocality
			}
			m.newActive(l)
		}
		if val&accessRequestUse != 0 && m.active != l {
			if m.active != noLocality {
				m.loc[l].access |= accessRequestUse
			} else {
				m.newActive(l)
			}
		}
	case regSts:
		if m.active != l {
			return
		}
		switch val & (stsCommandReady | stsGo | stsResponseRetry) {
		case stsCommandReady:
			switch m.loc[l].state {
			case fsReady:
				m.rwOff = 0
			case fsIdle, fsCompletion:
				m.loc[l].state = fsReady
				m.stsSet(l, stsCommandReady)
				m.rwOff = 0
			case fsExecution, fsReception:
				// Abort: the backend is cancelled (swtpm answers
				// at once), then the locality is back in READY.
				if m.loc[l].state == fsExecution {
					m.cancels++
				}
				m.loc[l].state = fsReady
				m.stsSet(l, stsCommandReady)
				m.rwOff = 0
			}
		case stsGo:
			if m.loc[l].state == fsReception && m.loc[l].sts&stsExpect == 0 {
				m.loc[l].state = fsExecution
				m.cmdLocality = l
				m.commands++
				cmd := append([]byte(nil), m.buf[:m.rwOff]...)
				m.pendingRsp = m.handler(l, cmd)
				m.doneAt = m.clk.Now().Add(m.execTime)
			}
		case stsResponseRetry:
			if m.loc[l].state == fsCompletion {
				m.rwOff = 0
				m.stsSet(l, stsValid|stsDataAvail)
			}
		}
	case regDataFIFO:
		if m.active != l {
			return
		}
		st := m.loc[l].state
		if st != fsReady && st != fsReception {
			return // dropped
		}
		if st == fsReady {
			m.loc[l].state = fsReception
			m.stsSet(l, stsExpect|stsValid)
		}
		val >>= shift
		for n := size; m.loc[l].sts&stsExpect != 0 && n > 0; {
			if m.rwOff < m.bufSize {
				m.buf[m.rwOff] = byte(val)
				m.rwOff++
				val >>= 8
				n--
			} else {
				m.stsSet(l, stsValid)
			}
		}
		if m.expectCap > 0 && m.rwOff >= m.expectCap {
			m.stsSet(l, stsValid)
		}
		if m.rwOff > 5 && m.loc[l].sts&stsExpect != 0 {
			if int(binary.BigEndian.Uint32(m.buf[2:6])) > m.rwOff {
				m.stsSet(l, stsExpect|stsValid)
			} else {
				m.stsSet(l, stsValid)
			}
		}
	}
}
