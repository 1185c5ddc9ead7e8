package tpm2

import (
	"encoding/binary"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
)

// Clock runs from _TPM_Init: the time between loading (or a platform
// reset) and Startup counts, and Clock never goes back.
func TestClockRunsUntilStartup(t *testing.T) {
	clk := newTestClock()
	tp, tr := startClocked(t, clk, nil)
	clk.advance(5 * time.Second)
	blob := save(t, tp)
	saved, _ := readClock(t, tr)

	tp2, err := New(Config{State: blob, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Second)
	tr2 := engineTransport{tp2}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr2); err != nil {
		t.Fatal(err)
	}
	if c, _ := readClock(t, tr2); c < saved+10000 {
		t.Fatalf("clock after load + 10 s + Startup = %d, want at least %d", c, saved+10000)
	}
	clk.advance(7 * time.Second)
	before, _ := readClock(t, tr2)
	tp2.Reset()
	clk.advance(3 * time.Second)
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr2); err != nil {
		t.Fatal(err)
	}
	if c, _ := readClock(t, tr2); c < before+3000 {
		t.Fatalf("clock after a reset = %d, was %d 3 s before", c, before)
	}
}

// After a stop that was not orderly the clock may be behind values it
// already reported: safe is NO until TPM2_Clear. SaveAtStop keeps it YES.
func TestClockSafeAfterRestart(t *testing.T) {
	clk := newTestClock()
	tp, tr := startClocked(t, clk, nil)
	if _, safe := readClock(t, tr); !safe {
		t.Fatal("a new TPM's clock is not safe")
	}
	orderly, err := tp.SaveAtStop()
	if err != nil {
		t.Fatal(err)
	}
	_, tr2 := startClocked(t, clk, orderly)
	if _, safe := readClock(t, tr2); !safe {
		t.Fatal("clock unsafe after an orderly stop")
	}
	tp3, tr3 := startClocked(t, clk, save(t, tp))
	if _, safe := readClock(t, tr3); safe {
		t.Fatal("clock safe after a stop that was not orderly")
	}
	// Still unsafe after the next restart, even an orderly one.
	b, err := tp3.SaveAtStop()
	if err != nil {
		t.Fatal(err)
	}
	_, tr4 := startClocked(t, clk, b)
	if _, safe := readClock(t, tr4); safe {
		t.Fatal("unsafe clock became safe by a restart")
	}
	if _, err := (gt.Clear{AuthHandle: gt.TPMRHLockout}).Execute(tr4); err != nil {
		t.Fatal(err)
	}
	if _, safe := readClock(t, tr4); !safe {
		t.Fatal("clock not safe after TPM2_Clear")
	}
}

// clockRateAdjust sends TPM2_ClockRateAdjust with the owner's empty
// password and returns the response code.
func clockRateAdjust(tp *TPM, adjust int8) uint32 {
	cmd := binary.BigEndian.AppendUint16(nil, stSessions)
	cmd = binary.BigEndian.AppendUint32(cmd, 0)
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(gt.TPMCCClockRateAdjust))
	cmd = binary.BigEndian.AppendUint32(cmd, rhOwner)
	cmd = binary.BigEndian.AppendUint32(cmd, 9)
	cmd = append(cmd, 0x40, 0, 0, 9, 0, 0, 0, 0, 0, byte(adjust))
	binary.BigEndian.PutUint32(cmd[2:], uint32(len(cmd)))
	return binary.BigEndian.Uint32(tp.Process(cmd, 0)[6:])
}

// TestClockRateAdjust: a coarse step makes Clock and TPM time run about
// 1% faster from then on, without a jump, out-of-range steps are
// refused, and a TPM Reset restores the nominal rate.
func TestClockRateAdjust(t *testing.T) {
	clk := newTestClock()
	tp, tr := startClocked(t, clk, nil)
	clk.advance(10 * time.Second)
	c0, _ := readClock(t, tr)
	if rc := clockRateAdjust(tp, 4); rc != rcValue|0x040|1<<8 {
		t.Fatalf("rateAdjust 4: rc %#x", rc)
	}
	if rc := clockRateAdjust(tp, 3); rc != rcSuccess {
		t.Fatalf("rateAdjust 3: rc %#x", rc)
	}
	if c, _ := readClock(t, tr); c != c0 {
		t.Fatalf("clock jumped from %d to %d at the rate change", c0, c)
	}
	time0 := tp.timeMS()
	clk.advance(100 * time.Second)
	if c, _ := readClock(t, tr); c != c0+101000 {
		t.Errorf("clock after 100 s at +1%%: %d, want %d", c, c0+101000)
	}
	if tm := tp.timeMS(); tm != time0+101000 {
		t.Errorf("time after 100 s at +1%%: %d, want %d", tm, time0+101000)
	}
	before, _ := readClock(t, tr)
	tp.Reset()
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	clk.advance(100 * time.Second)
	if c, _ := readClock(t, tr); c != before+100000 {
		t.Errorf("clock 100 s after a reset: %d, want %d (nominal rate)", c, before+100000)
	}
}

// TestClearResetsClockCountersAndDA: TPM2_Clear restarts Clock at zero,
// zeroes resetCount and restartCount and restores the DA parameters, as
// the reference does.
func TestClearResetsClockCountersAndDA(t *testing.T) {
	tp, tr := newStarted(t)
	tp.ps.ResetCount, tp.ps.RestartCount, tp.ps.MaxTries = 5, 6, 9
	tp.clockOffsetMS = 1 << 40
	before := tp.pcrUpdateCounter
	if _, err := (gt.Clear{AuthHandle: gt.TPMRHLockout}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	c, err := (gt.ReadClock{}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	ci := c.CurrentTime.ClockInfo
	if ci.Clock > 10000 || ci.ResetCount != 0 || ci.RestartCount != 0 || !ci.Safe {
		t.Fatalf("after Clear: %+v", ci)
	}
	if tp.ps.MaxTries != 3 || tp.ps.RecoveryTime != 1000 || tp.ps.LockoutRecovery != 1000 {
		t.Fatalf("DA parameters %d %d %d", tp.ps.MaxTries, tp.ps.RecoveryTime, tp.ps.LockoutRecovery)
	}
	if tp.pcrUpdateCounter != before+1 {
		t.Fatalf("pcrUpdateCounter %d, want %d", tp.pcrUpdateCounter, before+1)
	}
}
