package pvh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type fakeMem map[uint64][]byte // page-aligned base -> bytes

func (m fakeMem) read(pa uint64, n int) ([]byte, error) {
	for base, b := range m {
		if pa >= base && pa-base <= uint64(len(b)) && uint64(n) <= uint64(len(b))-(pa-base) {
			return b[pa-base : pa-base+uint64(n)], nil
		}
	}
	return nil, fmt.Errorf("unmapped %#x+%d", pa, n)
}

func buildStartInfo(cmdline string, entries int) fakeMem {
	le := binary.LittleEndian
	page := make([]byte, 4096)
	le.PutUint32(page[0:], startInfoMagic)
	le.PutUint32(page[4:], 1)
	le.PutUint64(page[24:], 0x10000+1024) // cmdline
	le.PutUint64(page[32:], 0xfe000)      // rsdp
	le.PutUint64(page[40:], 0x10000+512)  // memmap
	le.PutUint32(page[48:], uint32(entries))
	for i := 0; i < entries && i < 20; i++ {
		e := page[512+24*i:]
		le.PutUint64(e, uint64(i)<<30)
		le.PutUint64(e[8:], 1<<20)
		le.PutUint32(e[16:], MemRAM)
	}
	copy(page[1024:], cmdline)
	return fakeMem{0x10000: page}
}

func TestParseStartInfo(t *testing.T) {
	m := buildStartInfo("loglevel=debug selftest", 2)
	si, err := ParseStartInfo(0x10000, m.read)
	if err != nil {
		t.Fatal(err)
	}
	if si.Cmdline != "loglevel=debug selftest" || si.RSDP != 0xfe000 || len(si.Memmap) != 2 {
		t.Fatalf("parsed %+v", si)
	}
	if si.RAMEnd(0x1000) != 1<<20 || si.RAMEnd(2<<20) != 0 || si.RAMBytes() != 2<<20 {
		t.Fatalf("RAMEnd/RAMBytes wrong: %d %d %d", si.RAMEnd(0x1000), si.RAMEnd(2<<20), si.RAMBytes())
	}
}

func TestParseStartInfoRejectsBadInput(t *testing.T) {
	if _, err := ParseStartInfo(0, nil); !errors.Is(err, ErrNoStartInfo) {
		t.Fatalf("nil pointer: %v", err)
	}
	bad := buildStartInfo("x", 1)
	bad[0x10000][0] ^= 0xff
	if _, err := ParseStartInfo(0x10000, bad.read); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("bad magic: %v", err)
	}
	if _, err := ParseStartInfo(0x10000, buildStartInfo("x", 1000).read); err == nil {
		t.Fatal("absurd memmap count accepted")
	}
	if _, err := ParseStartInfo(0x10000, buildStartInfo("x", 0).read); err == nil {
		t.Fatal("missing memmap accepted")
	}
	unterminated := buildStartInfo(strings.Repeat("a", 3072), 1)
	if _, err := ParseStartInfo(0x10000, unterminated.read); err == nil {
		t.Fatal("command line running off mapped memory accepted")
	}
	if _, err := ParseStartInfo(0x20000, bad.read); err == nil {
		t.Fatal("unreadable start_info accepted")
	}
}

// TestCheckPlacement: the checks Hwinit1 makes on what the entry code did,
// against the boot information buildStartInfo lays out (start_info at
// 0x10000, memory map at 0x10200, command line at 0x10400; RAM regions of
// 1 MiB at every GiB).
func TestCheckPlacement(t *testing.T) {
	si, err := ParseStartInfo(0x10000, buildStartInfo("loglevel=debug", 2).read)
	if err != nil {
		t.Fatal(err)
	}
	const ramStart, ramSize = 0x20000, 1<<20 - 0x20000
	if err := si.checkPlacement(ramStart, ramSize, 0x30000); err != nil {
		t.Fatalf("boot information below the heap: %v", err)
	}
	for _, c := range []struct {
		name                         string
		ramStart, ramSize, heapStart uint64
		want                         string
	}{
		{"no RAM region at ramStart", 1 << 20, 1 << 20, 2 << 20, "no RAM at"},
		{"RAM not sized from the map", ramStart, 16 << 20, 0x30000, "ends at"},
		{"start_info in the heap", ramStart, ramSize, 0x10000, "hvm_start_info"},
		{"memory map in the heap", ramStart, ramSize, 0x10220, "memory map at"},
		{"command line in the heap", ramStart, ramSize, 0x10300, "command line at"},
	} {
		err := si.checkPlacement(c.ramStart, c.ramSize, c.heapStart)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

func FuzzParseStartInfo(f *testing.F) {
	f.Add(buildStartInfo("loglevel=info", 3)[0x10000])
	// A command-line pointer at the top of the address space (found by
	// fuzzing: address arithmetic must not wrap).
	top := buildStartInfo("x", 1)[0x10000]
	binary.LittleEndian.PutUint64(top[24:], 0xffffffffffffff30)
	f.Add(top)
	f.Fuzz(func(t *testing.T, page []byte) {
		if len(page) > 4096 {
			page = page[:4096]
		}
		p := make([]byte, 4096)
		copy(p, page)
		ParseStartInfo(0x10000, fakeMem{0x10000: p}.read)
	})
}
