// Command imgtrim lets a small Xen domain load a Go image that links the
// standard library's crypto.
//
// Go links crypto/internal/fips140/drbg.memory, a 32 MiB scratch buffer in
// .noptrbss that only FIPS 140-3 mode ever touches, so every image with
// crypto spans more than 34 MiB and Xen's domain builder refuses it for any
// smaller `memory=` ("segment kernel too large"). imgtrim ends the last
// loadable segment where that buffer begins and records the buffer's address
// in the board's `reclaim` variable, so the domain hands those pages to the
// Go heap instead. The board refuses to start if FIPS mode is ever enabled in
// a trimmed image.
//
// It changes nothing unless the layout is exactly as expected: the buffer
// must be the last thing in the last PT_LOAD segment, and the image must
// carry the board's marker. Usage: imgtrim IMAGE
package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

const (
	bufferSym  = "crypto/internal/fips140/drbg.memory"
	reclaimSym = "github.com/xenvtpm/xenvtpm/board/xen/pvh.reclaim"
	// reclaimMagic is the board's marker in reclaim[0] ("XENVTPMR").
	reclaimMagic = 0x524d5054564e4558
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: imgtrim IMAGE")
		os.Exit(2)
	}
	msg, err := trim(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "imgtrim: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Printf("imgtrim: %s: %s\n", os.Args[1], msg)
}

// ErrNoBuffer means the image has no FIPS scratch buffer: nothing to trim.
var ErrNoBuffer = errors.New("no FIPS scratch buffer")

func trim(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	out, saved, err := trimImage(data)
	if errors.Is(err, ErrNoBuffer) {
		return "no FIPS scratch buffer linked; left as is", nil
	}
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, out, 0o755); err != nil {
		return "", err
	}
	return fmt.Sprintf("load span reduced by %d MiB", saved>>20), nil
}

// trimImage returns the patched image and the bytes saved.
func trimImage(data []byte) ([]byte, uint64, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return nil, 0, errors.New("not a little-endian 64-bit ELF")
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, 0, fmt.Errorf("reading symbols: %w", err)
	}
	var buf, rec *elf.Symbol
	for i := range syms {
		switch syms[i].Name {
		case bufferSym:
			buf = &syms[i]
		case reclaimSym:
			rec = &syms[i]
		}
	}
	if buf == nil {
		return nil, 0, ErrNoBuffer
	}
	if rec == nil || rec.Size != 24 {
		return nil, 0, errors.New("image lacks the board's reclaim marker (not a board/xen/pvh image?)")
	}

	// The buffer must end the last PT_LOAD.
	last := -1
	for i, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			last = i
		}
	}
	if last < 0 {
		return nil, 0, errors.New("no PT_LOAD segment")
	}
	seg := f.Progs[last]
	if buf.Value+buf.Size != seg.Vaddr+seg.Memsz {
		return nil, 0, fmt.Errorf("%s [%#x,%#x) does not end the last segment (ends %#x); layout changed, refusing", bufferSym, buf.Value, buf.Value+buf.Size, seg.Vaddr+seg.Memsz)
	}
	if buf.Value < seg.Vaddr+seg.Filesz {
		return nil, 0, errors.New("scratch buffer overlaps file-backed data")
	}

	out := bytes.Clone(data)
	le := binary.LittleEndian

	// Patch the marker: reclaim = {magic, buffer address, buffer size}.
	var recOff int64 = -1
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && rec.Value >= s.Addr && rec.Value+24 <= s.Addr+s.Size {
			recOff = int64(s.Offset + rec.Value - s.Addr)
		}
	}
	if recOff < 0 {
		return nil, 0, errors.New("reclaim marker is not in file-backed data")
	}
	if le.Uint64(out[recOff:]) != reclaimMagic {
		return nil, 0, errors.New("reclaim marker has the wrong magic")
	}
	le.PutUint64(out[recOff+8:], buf.Value)
	le.PutUint64(out[recOff+16:], buf.Size)

	// Shorten the segment's memory size (Elf64_Phdr.p_memsz at +40).
	phOff := int64(le.Uint64(data[32:])) + int64(last)*int64(le.Uint16(data[54:]))
	newMem := buf.Value - seg.Vaddr
	le.PutUint64(out[phOff+40:], newMem)

	// Keep the section headers truthful (Elf64_Shdr.sh_size at +32).
	shOff := int64(le.Uint64(data[40:]))
	shEnt := int64(le.Uint16(data[58:]))
	for i, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS && s.Addr <= buf.Value && buf.Value < s.Addr+s.Size {
			le.PutUint64(out[shOff+int64(i)*shEnt+32:], buf.Value-s.Addr)
		}
	}
	return out, seg.Memsz - newMem, nil
}
