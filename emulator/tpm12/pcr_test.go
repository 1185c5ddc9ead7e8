package tpm12

import (
	"bytes"
	"crypto/sha1"
	"testing"
)

// extendValue is SHA-1(old || in), computed apart from the engine.
func extendValue(old, in []byte) []byte {
	s := sha1.Sum(append(append([]byte{}, old...), in...))
	return s[:]
}

func TestExtendAndRead(t *testing.T) {
	tp := startedTPM(t)
	in := bytes.Repeat([]byte{0xAB}, 20)
	want := extendValue(make([]byte, 20), in)
	if out := mustRun(t, tp, ordExtend, u32(10), in); !bytes.Equal(out, want) {
		t.Errorf("Extend outDigest %x, want %x", out, want)
	}
	if out := mustRun(t, tp, ordPCRRead, u32(10)); !bytes.Equal(out, want) {
		t.Errorf("PCRRead %x, want %x", out, want)
	}
	wantRC(t, tp, rcBadIndex, 0, tagRquCommand, ordExtend, u32(24), in)
	wantRC(t, tp, rcBadIndex, 0, tagRquCommand, ordPCRRead, u32(24))
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordExtend, u32(1), in[:19])
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordPCRRead, u32(1), []byte{0})
	wantRC(t, tp, rcBadTag, 0, tagRquAuth1, ordPCRRead, u32(1), make([]byte, authAreaSize))
}

func TestPCRPowerOnValues(t *testing.T) {
	tp := startedTPM(t)
	ones := bytes.Repeat([]byte{0xFF}, 20)
	for i := uint32(0); i < pcrCount; i++ {
		want := make([]byte, 20)
		if i >= 17 && i <= 22 {
			want = ones
		}
		if got := mustRun(t, tp, ordPCRRead, u32(i)); !bytes.Equal(got, want) {
			t.Errorf("PCR %d = %x", i, got)
		}
	}
}

// The PC Client locality rules for PCRs 16-23.
func TestPCRLocalityRules(t *testing.T) {
	in := make([]byte, 20)
	for _, c := range []struct {
		pcr      uint32
		extendOK []uint8 // localities that may extend
		resetOK  []uint8 // localities that may reset
	}{
		{0, []uint8{0, 1, 2, 3, 4}, nil},
		{16, []uint8{0, 1, 2, 3, 4}, []uint8{0, 1, 2, 3, 4}},
		{17, []uint8{2, 3, 4}, []uint8{4}},
		{18, []uint8{2, 3, 4}, []uint8{4}},
		{19, []uint8{2, 3}, []uint8{4}},
		{20, []uint8{1, 2, 3}, []uint8{2, 4}},
		{21, []uint8{2}, []uint8{2}},
		{22, []uint8{2}, []uint8{2}},
		{23, []uint8{0, 1, 2, 3, 4}, []uint8{0, 1, 2, 3, 4}},
	} {
		for loc := uint8(0); loc <= 4; loc++ {
			tp := startedTPM(t)
			want := rcBadLocality
			for _, l := range c.extendOK {
				if l == loc {
					want = rcSuccess
				}
			}
			wantRC(t, tp, want, loc, tagRquCommand, ordExtend, u32(c.pcr), in)
			sel := []byte{0, 0, 0}
			sel[c.pcr/8] = 1 << (c.pcr % 8)
			want = rcNotLocal
			if c.resetOK == nil {
				want = rcNotResetable
			}
			for _, l := range c.resetOK {
				if l == loc {
					want = rcSuccess
				}
			}
			wantRC(t, tp, want, loc, tagRquCommand, ordPCRReset, u16(3), sel)
		}
	}
	// A locality that does not exist extends nothing.
	wantRC(t, startedTPM(t), rcBadLocality, 5, tagRquCommand, ordExtend, u32(0), in)
}

func TestPCRReset(t *testing.T) {
	tp := startedTPM(t)
	in := bytes.Repeat([]byte{7}, 20)
	mustRun(t, tp, ordExtend, u32(16), in)
	wantRC(t, tp, rcSuccess, 2, tagRquCommand, ordExtend, u32(20), in)
	// 16 and 20 from locality 2: 16 back to zeros, 20 to ones.
	wantRC(t, tp, rcSuccess, 2, tagRquCommand, ordPCRReset, u16(3), []byte{0, 0, 0x11})
	if got := mustRun(t, tp, ordPCRRead, u32(16)); !bytes.Equal(got, make([]byte, 20)) {
		t.Errorf("PCR 16 after reset %x", got)
	}
	if got := mustRun(t, tp, ordPCRRead, u32(20)); !bytes.Equal(got, bytes.Repeat([]byte{0xFF}, 20)) {
		t.Errorf("PCR 20 after reset %x", got)
	}
	// All or nothing: PCR 16 is not reset when PCR 0 is also selected.
	mustRun(t, tp, ordExtend, u32(16), in)
	wantRC(t, tp, rcNotResetable, 0, tagRquCommand, ordPCRReset, u16(3), []byte{0x01, 0, 0x01})
	if got := mustRun(t, tp, ordPCRRead, u32(16)); bytes.Equal(got, make([]byte, 20)) {
		t.Error("PCR 16 reset by a refused PCR_Reset")
	}
	wantRC(t, tp, rcInvalidPCRInfo, 0, tagRquCommand, ordPCRReset, u16(3), []byte{0, 0, 0})
	wantRC(t, tp, rcInvalidPCRInfo, 0, tagRquCommand, ordPCRReset, u16(4), []byte{0, 0, 0, 1})
	wantRC(t, tp, rcInvalidPCRInfo, 0, tagRquCommand, ordPCRReset, u16(0))
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordPCRReset, u16(3), []byte{0})
	// A shorter selection is a valid one.
	wantRC(t, tp, rcNotResetable, 0, tagRquCommand, ordPCRReset, u16(1), []byte{0x01})
	wantRC(t, tp, rcSuccess, 0, tagRquCommand, ordPCRReset, u16(3), []byte{0, 0, 0x01})
}

// pv-grub measures the kernel into PCR 4 and the command line and the
// initrd into PCR 5 with raw TPM_ORD_Extend commands at locality 0.
func TestPVGrubExtends(t *testing.T) {
	tp := startedTPM(t)
	kernel := sha1.Sum([]byte("vmlinuz image bytes"))
	cmdline := sha1.Sum([]byte("root=/dev/xvda1 ro quiet"))
	initrd := sha1.Sum([]byte("initrd image bytes"))
	for _, m := range []struct {
		pcr uint32
		d   [20]byte
	}{{4, kernel}, {5, cmdline}, {5, initrd}} {
		raw := append([]byte{0x00, 0xC1, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x14}, u32(m.pcr)...)
		raw = append(raw, m.d[:]...)
		rsp := tp.Process(raw, 0)
		if len(rsp) != 30 || !bytes.Equal(rsp[:10], []byte{0, 0xC4, 0, 0, 0, 30, 0, 0, 0, 0}) {
			t.Fatalf("Extend PCR %d: response %x", m.pcr, rsp)
		}
	}
	zero := make([]byte, 20)
	want4 := extendValue(zero, kernel[:])
	want5 := extendValue(extendValue(zero, cmdline[:]), initrd[:])
	if got := mustRun(t, tp, ordPCRRead, u32(4)); !bytes.Equal(got, want4) {
		t.Errorf("PCR 4 %x, want %x", got, want4)
	}
	if got := mustRun(t, tp, ordPCRRead, u32(5)); !bytes.Equal(got, want5) {
		t.Errorf("PCR 5 %x, want %x", got, want5)
	}
}

func TestGetRandom(t *testing.T) {
	tp := startedTPM(t)
	out := mustRun(t, tp, ordGetRandom, u32(32))
	if len(out) != 36 || !bytes.Equal(out[:4], u32(32)) || bytes.Equal(out[4:], make([]byte, 32)) {
		t.Errorf("GetRandom(32) %x", out)
	}
	out = mustRun(t, tp, ordGetRandom, u32(0))
	if !bytes.Equal(out, u32(0)) {
		t.Errorf("GetRandom(0) %x", out)
	}
	out = mustRun(t, tp, ordGetRandom, u32(1<<20))
	if len(out) != 4+randomMax || len(out)+10 > bufferMax {
		t.Errorf("GetRandom(1 MiB) returned %d bytes", len(out)-4)
	}
}
