package tpmtis

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzResponse feeds arbitrary response bytes through the response-reading
// path (the fake TPM serves them as QEMU would: up to the smaller of their
// header length and the buffer). The driver must return either an error or
// exactly the announced response, never panic or hang, and must still work
// for the next command.
func FuzzResponse(f *testing.F) {
	f.Add(rsp(0x8001, 0, 0, 4, 1, 2, 3, 4))
	f.Add(rsp(0x8001, 0x922))
	f.Add(rsp(0x00C4, 0x1E))
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 3})
	f.Add([]byte{0x80, 0x01, 0, 0, 0x10, 0x01, 0, 0, 0, 0})
	f.Add([]byte{0x80, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, wide := range []bool{false, true} {
			fuzzResponse(t, data, wide)
		}
	})
}

func fuzzResponse(t *testing.T, data []byte, wide bool) {
	r := newRig(Family20)
	cfg := r.cfg(0)
	cfg.WideFIFO = wide
	d, err := New(r.tis.page(0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.tis.handler = func(int, []byte) []byte { return data }
	got, err := d.Send(getRandom2(8))
	if err == nil {
		if len(got) < headerSize || int(binary.BigEndian.Uint32(got[2:6])) != len(got) {
			t.Fatalf("wide=%v: accepted a response whose length field disagrees: %x", wide, got)
		}
		padded := make([]byte, MaxBuffer)
		copy(padded, data)
		if !bytes.Equal(got, padded[:len(got)]) {
			t.Fatalf("wide=%v: response %x is not what the TPM sent (%x)", wide, got, data)
		}
	}
	r.tis.handler = r.toy.handle
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatalf("wide=%v: driver unusable after response %x: %v", wide, data, err)
	}
}

// FuzzCapability12 feeds arbitrary answers to the TPM_GetCapability calls a
// TPM 1.2 gets at New (TIS timeouts, durations). New must not fail or panic
// because of them, and what it keeps can only lengthen the TIS defaults.
func FuzzCapability12(f *testing.F) {
	caps := func(vals ...uint32) []byte {
		body := binary.BigEndian.AppendUint32(nil, uint32(4*len(vals)))
		for _, v := range vals {
			body = binary.BigEndian.AppendUint32(body, v)
		}
		return rsp(0x00C4, 0, body...)
	}
	f.Add(caps(750000, 2000000, 750000, 750000))
	f.Add(caps(1, 2, 3))
	f.Add(caps(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
	f.Add(rsp(0x00C4, 0x26))
	f.Add([]byte{0, 0xC4, 0, 0, 0, 14, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRig(Family12)
		r.tis.handler = func(l int, cmd []byte) []byte {
			if binary.BigEndian.Uint32(cmd[6:]) == 0x65 {
				return data
			}
			return r.toy.handle(l, cmd)
		}
		d, err := New(r.tis.page(0), r.cfg(0))
		if err != nil {
			// Only a malformed frame may stop New, never the values.
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrBurstCount) && !errors.Is(err, ErrRetryExhausted) {
				t.Fatalf("New: %v", err)
			}
			return
		}
		in := d.Info()
		if in.Family != Family12 {
			t.Fatalf("family %v", in.Family)
		}
		to, du := in.Timeouts, in.Durations
		if to.A < TPM12Timeouts.A || to.B < TPM12Timeouts.B || to.C < TPM12Timeouts.C || to.D < TPM12Timeouts.D {
			t.Fatalf("timeouts %+v shorter than the TIS defaults", to)
		}
		if du.Short < TPM12Durations.Short || du.Medium < TPM12Durations.Medium || du.Long < TPM12Durations.Long {
			t.Fatalf("durations %+v shorter than the defaults", du)
		}
	})
}
