package tpm12

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var testCounter = sha([]byte("counter"))

// createCounterRun creates a counter on an owner OSAP session and
// returns its countID.
func createCounterRun(t testing.TB, tp *TPM, label string) (uint32, uint32) {
	t.Helper()
	odd := bytes.Repeat([]byte{0x51}, 20)
	out := mustRun(t, tp, ordOSAP, u16(uint16(etOwner)), u32(0), odd)
	h, even, shared := binary.BigEndian.Uint32(out), out[4:24], hmac1(testOwner, out[24:44], odd)
	pad := sha(shared, even)
	enc := make([]byte, 20)
	for i := range enc {
		enc[i] = testCounter[i] ^ pad[i]
	}
	rc, out := authRun(t, tp, h, even, shared, ordCreateCounter, nil, append(enc, label...))
	if rc != rcSuccess {
		return rc, 0
	}
	return rc, binary.BigEndian.Uint32(out)
}

func counterCount(t testing.TB, tp *TPM, id uint32) uint32 {
	t.Helper()
	out := mustRun(t, tp, ordReadCounter, u32(id))
	return binary.BigEndian.Uint32(out[6:])
}

func TestCounters(t *testing.T) {
	tp, _ := ownedTPM(t)
	tp.NVChanged()
	_, a := createCounterRun(t, tp, "aaaa")
	_, b := createCounterRun(t, tp, "bbbb")
	if !tp.NVChanged() {
		t.Error("CreateCounter did not report an NV change")
	}
	if a != 0 || b != 1 || counterCount(t, tp, a) != 1 || counterCount(t, tp, b) != 2 {
		t.Fatalf("counters %d %d", a, b)
	}
	if got := mustRun(t, tp, ordReadCounter, u32(b)); !bytes.Equal(got, append(append(u16(tagCounterValue), "bbbb"...), u32(2)...)) {
		t.Errorf("TPM_COUNTER_VALUE %x", got)
	}
	if rc, _ := ownerRun(t, tp, testCounter, ordIncrementCounter, u32(b)); rc != rcSuccess {
		t.Fatalf("IncrementCounter: rc %#x", rc)
	}
	if !tp.NVChanged() || counterCount(t, tp, b) != 3 {
		t.Error("IncrementCounter")
	}
	// One counter per boot cycle.
	if rc, _ := ownerRun(t, tp, testCounter, ordIncrementCounter, u32(a)); rc != rcBadCounter {
		t.Errorf("second counter: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordIncrementCounter, u32(b)); rc != rcAuthFail {
		t.Errorf("wrong secret: rc %#x", rc)
	}
	// Counts survive Save/Load; the active counter does not outlive the
	// boot cycle.
	state, _ := tp.Save()
	tp2, err := New(Config{State: state})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, tp2, ordStartup, u16(stClear))
	if counterCount(t, tp2, b) != 3 {
		t.Error("count lost across Save/Load")
	}
	if rc, _ := ownerRun(t, tp2, testCounter, ordIncrementCounter, u32(a)); rc != rcSuccess {
		t.Errorf("after a power cycle: rc %#x", rc)
	}
	// Releasing the active counter stops all increments; a new counter
	// starts above every count, released ones included.
	if rc, _ := ownerRun(t, tp2, testCounter, ordReleaseCounter, u32(a)); rc != rcSuccess {
		t.Fatalf("ReleaseCounter: rc %#x", rc)
	}
	wantRC(t, tp2, rcBadCounter, 0, tagRquCommand, ordReadCounter, u32(a))
	if rc, _ := ownerRun(t, tp2, testCounter, ordIncrementCounter, u32(b)); rc != rcBadCounter {
		t.Errorf("after releasing the active counter: rc %#x", rc)
	}
	_, c := createCounterRun(t, tp2, "cccc")
	if c != a || counterCount(t, tp2, c) != 4 {
		t.Errorf("new counter %d count %d", c, counterCount(t, tp2, c))
	}
	if rc, _ := ownerRun(t, tp2, testOwner, ordReleaseCounterOwner, u32(b)); rc != rcSuccess {
		t.Fatalf("ReleaseCounterOwner: rc %#x", rc)
	}
	for i := 0; i < countersMax-1; i++ {
		createCounterRun(t, tp2, "dddd")
	}
	if rc, _ := createCounterRun(t, tp2, "eeee"); rc != rcResources {
		t.Errorf("ninth counter: rc %#x", rc)
	}
}
