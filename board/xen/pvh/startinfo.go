package pvh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// StartInfo is struct hvm_start_info (xen/include/public/arch-x86/hvm/
// start_info.h), version 1, as Xen's domain builder leaves it for a PVH
// guest, with the command line and memory map it points to copied out.
type StartInfo struct {
	Version  uint32
	Flags    uint32
	Cmdline  string
	RSDP     uint64
	Memmap   []MemmapEntry
	Modules  uint32
	Location uint64 // guest-physical address it was read from

	// areas are where start_info, the memory map and the command line
	// lie in guest-physical memory.
	areas []area
}

// area is a range of guest-physical memory the boot information occupies.
type area struct {
	what       string
	start, end uint64
}

// MemmapEntry is struct hvm_memmap_table_entry.
type MemmapEntry struct {
	Addr, Size uint64
	Type       uint32
}

// Memory map entry types (E820).
const (
	MemRAM      = 1
	MemReserved = 2
)

const (
	startInfoMagic = 0x336ec578
	startInfoSize  = 56
	memmapEntSize  = 24
	maxCmdline     = 4096
	maxMemmap      = 128
)

// ErrNoStartInfo means the entry point was not given a start_info pointer.
var ErrNoStartInfo = errors.New("pvh: no hvm_start_info (EBX was 0): not started as a Xen PVH guest")

// PhysReader reads n bytes of guest-physical memory at pa.
type PhysReader func(pa uint64, n int) ([]byte, error)

// ParseStartInfo decodes the start_info at pa and what it points to. Every
// pointer and count is checked before it is followed.
func ParseStartInfo(pa uint64, read PhysReader) (*StartInfo, error) {
	if pa == 0 {
		return nil, ErrNoStartInfo
	}
	b, err := read(pa, startInfoSize)
	if err != nil {
		return nil, fmt.Errorf("pvh: reading hvm_start_info at %#x: %w", pa, err)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[0:]); m != startInfoMagic {
		return nil, fmt.Errorf("pvh: hvm_start_info at %#x has magic %#x, want %#x", pa, m, startInfoMagic)
	}
	si := &StartInfo{
		Version:  le.Uint32(b[4:]),
		Flags:    le.Uint32(b[8:]),
		Modules:  le.Uint32(b[12:]),
		RSDP:     le.Uint64(b[32:]),
		Location: pa,
		areas:    []area{{"hvm_start_info", pa, pa + startInfoSize}},
	}
	if si.Version < 1 {
		return nil, fmt.Errorf("pvh: hvm_start_info version %d has no memory map (need 1)", si.Version)
	}
	if cl := le.Uint64(b[24:]); cl != 0 {
		s, err := readCString(cl, read)
		if err != nil {
			return nil, fmt.Errorf("pvh: command line at %#x: %w", cl, err)
		}
		si.Cmdline = s
		si.areas = append(si.areas, area{"the command line", cl, cl + uint64(len(s)) + 1})
	}
	mm, n := le.Uint64(b[40:]), le.Uint32(b[48:])
	if n > maxMemmap {
		return nil, fmt.Errorf("pvh: memory map claims %d entries (max %d)", n, maxMemmap)
	}
	if n == 0 || mm == 0 {
		return nil, fmt.Errorf("pvh: hvm_start_info carries no memory map")
	}
	mb, err := read(mm, int(n)*memmapEntSize)
	if err != nil {
		return nil, fmt.Errorf("pvh: memory map at %#x: %w", mm, err)
	}
	si.areas = append(si.areas, area{"the memory map", mm, mm + uint64(n)*memmapEntSize})
	for i := 0; i < int(n); i++ {
		e := mb[i*memmapEntSize:]
		si.Memmap = append(si.Memmap, MemmapEntry{Addr: le.Uint64(e), Size: le.Uint64(e[8:]), Type: le.Uint32(e[16:])})
	}
	return si, nil
}

func readCString(pa uint64, read PhysReader) (string, error) {
	var out []byte
	for len(out) < maxCmdline {
		// Read up to the end of the page so a string ending near a page
		// boundary never reads past it.
		chunk := int(4096 - pa%4096)
		if pa+uint64(chunk) < pa {
			return "", fmt.Errorf("runs past the end of the address space")
		}
		b, err := read(pa, chunk)
		if err != nil {
			return "", err
		}
		for i, c := range b {
			if c == 0 {
				return string(append(out, b[:i]...)), nil
			}
		}
		out = append(out, b...)
		pa += uint64(chunk)
	}
	return "", fmt.Errorf("not NUL-terminated within %d bytes", maxCmdline)
}

// checkPlacement checks what the entry code (cpuinit) did with the boot
// information before Go could read it: that Go's RAM, [ramStart,
// ramStart+ramSize), is the memory map's RAM region holding ramStart (the
// entry code sizes RAM from the map on its own, and keeps a linked default
// when it finds no such region), and that nothing of the boot information
// lies in the heap, [heapStart, ramStart+ramSize), which the runtime may
// have reused before it was read (the entry code starts the heap a fixed
// reserve past the image, where Xen's domain builder puts it).
func (si *StartInfo) checkPlacement(ramStart, ramSize, heapStart uint64) error {
	end := si.RAMEnd(ramStart)
	if end == 0 {
		return fmt.Errorf("pvh: memory map has no RAM at %#x:\n%s", ramStart, si.MemmapString())
	}
	if ramStart+ramSize != end {
		return fmt.Errorf("pvh: Go was given RAM %#x-%#x, but the memory map's RAM region there ends at %#x:\n%s",
			ramStart, ramStart+ramSize, end, si.MemmapString())
	}
	var in []string
	for _, a := range si.areas {
		if a.start < end && heapStart < a.end {
			in = append(in, fmt.Sprintf("%s at %#x-%#x", a.what, a.start, a.end))
		}
	}
	if in != nil {
		return fmt.Errorf("pvh: %s in the heap (starts %#x); raise BOOT_INFO_RESERVE", strings.Join(in, ", "), heapStart)
	}
	return nil
}

// MemmapString formats the memory map for the log.
func (si *StartInfo) MemmapString() string {
	s := ""
	for _, e := range si.Memmap {
		s += fmt.Sprintf("  %#012x-%#012x type %d\n", e.Addr, e.Addr+e.Size, e.Type)
	}
	return s
}

// RAMEnd returns the end of the RAM region that contains addr, or 0.
func (si *StartInfo) RAMEnd(addr uint64) uint64 {
	for _, e := range si.Memmap {
		if e.Type == MemRAM && addr >= e.Addr && addr < e.Addr+e.Size {
			return e.Addr + e.Size
		}
	}
	return 0
}

// RAMBytes is the total RAM in the memory map.
func (si *StartInfo) RAMBytes() (n uint64) {
	for _, e := range si.Memmap {
		if e.Type == MemRAM {
			n += e.Size
		}
	}
	return n
}
