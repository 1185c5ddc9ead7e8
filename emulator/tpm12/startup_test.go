package tpm12

import (
	"bytes"
	"testing"
)

func TestStartupRules(t *testing.T) {
	tp := newTPM(t)
	// Before Startup every command answers TPM_INVALID_POSTINIT.
	wantRC(t, tp, rcInvalidPostInit, 0, tagRquCommand, ordPCRRead, u32(0))
	wantRC(t, tp, rcInvalidPostInit, 0, tagRquCommand, ordGetCapability, u32(capVersion), u32(0))
	mustRun(t, tp, ordStartup, u16(stClear))
	if !tp.Started() {
		t.Fatal("not started")
	}
	wantRC(t, tp, rcInvalidPostInit, 0, tagRquCommand, ordStartup, u16(stClear))
}

// A Startup that fails still ends the post-init state (Part 3 §3.2
// action 6, as libtpms does): the next Startup is refused.
func TestFailedStartupEndsPostInit(t *testing.T) {
	for name, c := range map[string]struct {
		tag    uint16
		parts  [][]byte
		wantRC uint32
	}{
		"bad type":  {tagRquCommand, [][]byte{u16(7)}, rcBadParameter},
		"truncated": {tagRquCommand, nil, rcBadParamSize},
		"auth tag":  {tagRquAuth1, [][]byte{u16(stClear), make([]byte, authAreaSize)}, rcBadTag},
	} {
		tp := startedTPM(t)
		mustRun(t, tp, ordSaveState)
		tp.Reset()
		wantRC(t, tp, c.wantRC, 0, c.tag, ordStartup, c.parts...)
		if !tp.Started() || tp.ps.Saved != nil {
			t.Errorf("%s: started %v, saved state kept %v", name, tp.Started(), tp.ps.Saved != nil)
		}
		wantRC(t, tp, rcInvalidPostInit, 0, tagRquCommand, ordStartup, u16(stClear))
		mustRun(t, tp, ordPCRRead, u32(0))
	}
}

func TestSaveStateResume(t *testing.T) {
	tp := startedTPM(t)
	mustRun(t, tp, ordExtend, u32(4), bytes.Repeat([]byte{1}, 20))
	mustRun(t, tp, ordExtend, u32(16), bytes.Repeat([]byte{2}, 20))
	pcr4 := mustRun(t, tp, ordPCRRead, u32(4))
	tp.NVChanged()
	mustRun(t, tp, ordSaveState)
	if !tp.NVChanged() {
		t.Error("SaveState did not report a durable change")
	}
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	// A power cycle through the host: a new instance from the blob.
	tp2, err := New(Config{State: blob})
	if err != nil {
		t.Fatal(err)
	}
	// Before Startup a command is refused and keeps the saved state.
	if tp2.WritesNV(ordPCRRead) || !tp2.WritesNV(ordStartup) {
		t.Error("WritesNV before Startup")
	}
	mustRun(t, tp2, ordStartup, u16(stState))
	if got := mustRun(t, tp2, ordPCRRead, u32(4)); !bytes.Equal(got, pcr4) {
		t.Errorf("PCR 4 after resume %x, want %x", got, pcr4)
	}
	// Resettable PCRs are not preserved (Part 3 §3.2).
	if got := mustRun(t, tp2, ordPCRRead, u32(16)); !bytes.Equal(got, make([]byte, 20)) {
		t.Errorf("PCR 16 after resume %x, want zeros", got)
	}
	if tp2.ps.Saved != nil || !tp2.NVChanged() {
		t.Error("saved state not consumed by Startup(ST_STATE)")
	}
	// Resuming twice from one SaveState is refused: failure mode.
	tp2.Reset()
	wantRC(t, tp2, rcFailedSelfTest, 0, tagRquCommand, ordStartup, u16(stState))
	wantRC(t, tp2, rcFailedSelfTest, 0, tagRquCommand, ordPCRRead, u32(0))
	getCap(t, tp2, capVersionVal, nil)
	wantRC(t, tp2, rcFailedSelfTest, 0, tagRquCommand, ordGetCapability, u32(capProperty), u32(4), u32(propPCR))
	out := mustRun(t, tp2, ordGetTestResult)
	if !bytes.Contains(out, []byte("failure")) {
		t.Errorf("GetTestResult in failure mode: %q", out)
	}
	tp2.Reset()
	mustRun(t, tp2, ordStartup, u16(stClear))
}

func TestSaveStateDiscardedByNextCommand(t *testing.T) {
	tp := startedTPM(t)
	mustRun(t, tp, ordSaveState)
	mustRun(t, tp, ordGetRandom, u32(4))
	if tp.ps.Saved != nil {
		t.Fatal("saved state survived a later command")
	}
	tp.Reset()
	wantRC(t, tp, rcFailedSelfTest, 0, tagRquCommand, ordStartup, u16(stState))
}

func TestStartupClearResetsPCRs(t *testing.T) {
	tp := startedTPM(t)
	mustRun(t, tp, ordExtend, u32(0), make([]byte, 20))
	mustRun(t, tp, ordSaveState)
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	if got := mustRun(t, tp, ordPCRRead, u32(0)); !bytes.Equal(got, make([]byte, 20)) {
		t.Errorf("PCR 0 after Startup(ST_CLEAR): %x", got)
	}
	if tp.ps.Saved != nil {
		t.Error("Startup(ST_CLEAR) kept the saved state")
	}
}

func TestStartupDeactivated(t *testing.T) {
	tp := newTPM(t)
	mustRun(t, tp, ordStartup, u16(stDeactivated))
	wantRC(t, tp, rcDeactivated, 0, tagRquCommand, ordPCRRead, u32(0))
	wantRC(t, tp, rcDeactivated, 0, tagRquCommand, ordGetRandom, u32(4))
	wantRC(t, tp, rcDeactivated, 0, tagRquCommand, ordReadPubek, make([]byte, 20))
	// Extend still extends, but reveals nothing (Part 3 §16.1 action 8).
	if out := mustRun(t, tp, ordExtend, u32(0), make([]byte, 20)); !bytes.Equal(out, make([]byte, 20)) {
		t.Errorf("Extend outDigest while deactivated: %x", out)
	}
	vol := getCap(t, tp, capFlag, u32(capFlagVolatile))
	if len(vol) != 7 || vol[2] != 1 {
		t.Errorf("volatile flags %x, want deactivated set", vol)
	}
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	mustRun(t, tp, ordPCRRead, u32(0))
}

func TestSelfTests(t *testing.T) {
	tp := startedTPM(t)
	if out := mustRun(t, tp, ordGetTestResult); !bytes.Contains(out, []byte("not run")) {
		t.Errorf("GetTestResult before a self-test: %q", out)
	}
	mustRun(t, tp, ordContinueSelfTest)
	mustRun(t, tp, ordSelfTestFull)
	if out := mustRun(t, tp, ordGetTestResult); !bytes.Contains(out, []byte("passed")) {
		t.Errorf("GetTestResult: %q", out)
	}
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordContinueSelfTest, []byte{0})
}
