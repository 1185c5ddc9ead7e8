package tpm12

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
)

func TestStateRoundTrip(t *testing.T) {
	tp := startedTPM(t)
	pub := mustRun(t, tp, ordReadPubek, make([]byte, 20))
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(blob, []byte("XVTPM12\x00")) {
		t.Errorf("blob begins %q", blob[:8])
	}
	tp2, err := New(Config{State: blob})
	if err != nil {
		t.Fatal(err)
	}
	if tp2.Started() {
		t.Error("a loaded TPM needs Startup")
	}
	mustRun(t, tp2, ordStartup, u16(stClear))
	if got := mustRun(t, tp2, ordReadPubek, make([]byte, 20)); !bytes.Equal(got, pub) {
		t.Error("EK changed across Save/Load")
	}
}

func TestStateRefusesOtherFamilyAndDamage(t *testing.T) {
	tp := newTPM(t)
	blob, _ := tp.Save()
	// A TPM 2.0 blob is refused by this engine, and this engine's blob
	// by the TPM 2.0 engine.
	t2, err := tpm2.New(tpm2.Config{})
	if err != nil {
		t.Fatal(err)
	}
	blob2, err := t2.Save()
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Load(blob2); !errors.Is(err, ErrOtherFamily) {
		t.Errorf("Load(TPM 2.0 blob): %v", err)
	}
	if _, err := tpm2.New(tpm2.Config{State: blob}); !errors.Is(err, tpm2.ErrBadState) {
		t.Errorf("tpm2 took a TPM 1.2 blob: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": blob[:len(blob)-1],
		"flipped":   append(append([]byte{}, blob[:20]...), append([]byte{blob[20] ^ 1}, blob[21:]...)...),
		"magic":     append([]byte("XVTPM13\x00"), blob[8:]...),
	} {
		if err := tp.Load(b); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Nothing changed: the TPM still starts.
	mustRun(t, tp, ordStartup, u16(stClear))
}

func TestNVChanged(t *testing.T) {
	tp := startedTPM(t)
	tp.NVChanged()
	mustRun(t, tp, ordExtend, u32(0), make([]byte, 20))
	mustRun(t, tp, ordGetRandom, u32(8))
	if tp.NVChanged() {
		t.Error("Extend or GetRandom reported a durable change")
	}
	if !tp.WritesNV(ordSaveState) || tp.WritesNV(ordExtend) || tp.WritesNV(0x1234) {
		t.Error("WritesNV does not follow the table")
	}
	mustRun(t, tp, ordSaveState)
	if !tp.NVChanged() {
		t.Error("SaveState reported no durable change")
	}
	if !tp.WritesNV(0x1234) {
		t.Error("WritesNV false for an ordinal that discards the saved state")
	}
	wantRC(t, tp, rcBadOrdinal, 0, tagRquCommand, 0x1234)
	if tp.ps.Saved != nil || !tp.NVChanged() {
		t.Error("an unknown ordinal did not discard the saved state")
	}
}

// Malformed headers get the spec's codes.
func TestMalformedCommands(t *testing.T) {
	tp := startedTPM(t)
	for name, c := range map[string]struct {
		cmd  []byte
		want uint32
	}{
		"empty":           {nil, rcBadParamSize},
		"short header":    {[]byte{0, 0xC1, 0, 0, 0, 9, 0, 0, 0}, rcBadParamSize},
		"size too large":  {[]byte{0, 0xC1, 0, 0, 0, 11, 0, 0, 0, 0x53}, rcBadParamSize},
		"size too small":  {[]byte{0, 0xC1, 0, 0, 0, 9, 0, 0, 0, 0x53}, rcBadParamSize},
		"bad tag":         {[]byte{0, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0x53}, rcBadTag},
		"auth2 tag":       {[]byte{0, 0xC3, 0, 0, 0, 10, 0, 0, 0, 0x53}, rcBadTag},
		"unknown ordinal": {[]byte{0, 0xC1, 0, 0, 0, 10, 0, 0, 0x12, 0x34}, rcBadOrdinal},
		"over 4 KiB":      {append([]byte{0, 0xC1, 0, 0, 0x10, 0x01, 0, 0, 0, 0x53}, make([]byte, 4087)...), rcBadParamSize},
	} {
		rsp := tp.Process(c.cmd, 0)
		if len(rsp) != 10 || !bytes.Equal(rsp[:6], []byte{0, 0xC4, 0, 0, 0, 10}) || rsp[9] != byte(c.want) {
			t.Errorf("%s: response %x, want code %#x", name, rsp, c.want)
		}
	}
}

func TestRestorePersistentUndoesAChange(t *testing.T) {
	tp := startedTPM(t)
	mustRun(t, tp, ordExtend, u32(10), sha([]byte("m")))
	pcr := tp.pcr[10]
	before, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	secret := sha([]byte("index"))
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1000, nvPerOwnerWrite, 4), secret)
	mustRun(t, tp, ordNVWriteValue, nvWriteParams(0x1000, 0, nil))
	if err := tp.RestorePersistent([]byte("garbage")); err == nil {
		t.Fatal("garbage restored")
	}
	if err := tp.RestorePersistent(before); err != nil {
		t.Fatal(err)
	}
	if tp.nvFind(0x1000) >= 0 || len(tp.nvLocks) != 0 {
		t.Error("the index or its lock survived the restore")
	}
	if !tp.Started() || tp.pcr[10] != pcr || tp.NVChanged() {
		t.Error("volatile state lost, or a change reported")
	}
	mustRun(t, tp, ordGetRandom, u32(4))
}

func TestSavedStateSurvivesCommandsBeforeStartup(t *testing.T) {
	tp := startedTPM(t)
	mustRun(t, tp, ordSaveState)
	if !tp.WritesNV(ordGetRandom) {
		t.Error("after SaveState any command discards the saved state")
	}
	tp.Reset()
	if tp.WritesNV(ordGetCapability) || tp.WritesNV(0x1234) || tp.WritesNV(ordNVWriteValue) || !tp.WritesNV(ordStartup) {
		t.Error("WritesNV before Startup")
	}
	tp.NVChanged()
	wantRC(t, tp, rcInvalidPostInit, 0, tagRquCommand, ordGetCapability, u32(capVersion), u32(0))
	wantRC(t, tp, rcBadOrdinal, 0, tagRquCommand, 0x1234)
	if tp.NVChanged() {
		t.Error("a refused command before Startup changed durable state")
	}
	mustRun(t, tp, ordStartup, u16(stState))
}

func TestInitPCR(t *testing.T) {
	tp := newTPM(t)
	v := sha([]byte("hw"))
	if err := tp.InitPCR(0, [20]byte(v)); err == nil {
		t.Error("InitPCR before Startup")
	}
	mustRun(t, tp, ordStartup, u16(stClear))
	if err := tp.InitPCR(24, [20]byte(v)); err == nil {
		t.Error("InitPCR 24")
	}
	if err := tp.InitPCR(17, [20]byte(v)); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, tp, ordPCRRead, u32(17)); string(got) != string(v) {
		t.Errorf("PCR 17 %x", got)
	}
}
