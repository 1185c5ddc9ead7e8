package tpm2

import (
	"encoding/binary"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
)

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
