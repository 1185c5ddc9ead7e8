package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

func newPage(t testing.TB) (*Page, []byte) {
	t.Helper()
	b := make([]byte, PageSize)
	r, err := New(shm.New(b))
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func TestNewRejectsShortPage(t *testing.T) {
	if _, err := New(shm.New(make([]byte, 1024))); err == nil {
		t.Fatal("1 KiB page accepted")
	}
	if _, err := New(nil); err == nil {
		t.Fatal("nil page accepted")
	}
}

func TestSubmitLayout(t *testing.T) {
	r, b := newPage(t)
	b[7] = 9 // stale nr_extra_pages from a previous user
	cmd := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x7b, 0, 8}
	if err := r.Submit(2, cmd); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(b[0:]); got != uint32(len(cmd)) {
		t.Errorf("length %d, want %d", got, len(cmd))
	}
	if b[4] != byte(StateSubmit) || b[5] != 2 || b[6] != 0 || b[7] != 0 {
		t.Errorf("header % x, want state SUBMIT, locality 2, pad 0, nr_extra_pages 0", b[4:8])
	}
	if !bytes.Equal(b[8:8+len(cmd)], cmd) {
		t.Errorf("data at offset 8 is % x", b[8:8+len(cmd)])
	}
}

func TestSubmitLimits(t *testing.T) {
	r, b := newPage(t)
	if err := r.Submit(0, make([]byte, MaxData)); err != nil {
		t.Fatalf("4088-byte command refused: %v", err)
	}
	b[4] = 0
	if err := r.Submit(0, make([]byte, MaxData+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("4089-byte command: %v, want ErrTooLong", err)
	}
	if err := r.Submit(0, nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty command: %v", err)
	}
	if r.State() != StateIdle {
		t.Fatalf("refused submits changed the state to %v", r.State())
	}
}

func TestRoundTrip(t *testing.T) {
	r, _ := newPage(t)
	if err := r.Submit(3, []byte("command")); err != nil {
		t.Fatal(err)
	}
	req, err := r.Request(nil)
	if err != nil || req.Locality != 3 || string(req.Cmd) != "command" {
		t.Fatalf("Request = %+v, %v", req, err)
	}
	if _, err := r.Response(nil); err == nil {
		t.Fatal("response read while state is SUBMIT")
	}
	if err := r.Finish(req, []byte("response!")); err != nil {
		t.Fatal(err)
	}
	if r.State() != StateFinish {
		t.Fatalf("state %v after Finish", r.State())
	}
	rsp, err := r.Response(nil)
	if err != nil || string(rsp) != "response!" {
		t.Fatalf("Response = %q, %v", rsp, err)
	}
}

// A frontend that announces extra pages gets its response at the same
// shifted offset (Linux and mini-os both compute 8 + 4·n).
func TestExtraPagesOffset(t *testing.T) {
	r, b := newPage(t)
	b[7] = 2
	copy(b[16:], "abc")
	binary.LittleEndian.PutUint32(b, 3)
	b[4] = byte(StateSubmit)
	req, err := r.Request(nil)
	if err != nil || string(req.Cmd) != "abc" {
		t.Fatalf("Request = %+v, %v", req, err)
	}
	if req.MaxResponse() != PageSize-16 {
		t.Errorf("MaxResponse %d", req.MaxResponse())
	}
	if err := r.Finish(req, []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if string(b[16:19]) != "xyz" {
		t.Errorf("response not at offset 16: % x", b[8:20])
	}
	if rsp, err := r.Response(nil); err != nil || string(rsp) != "xyz" {
		t.Errorf("Response = %q, %v", rsp, err)
	}
}

func TestHostileLengths(t *testing.T) {
	for _, tc := range []struct {
		nrExtra uint8
		length  uint32
	}{
		{0, MaxData + 1},
		{0, 0xffffffff},
		{255, PageSize - 1028 + 1},
		{1, MaxData},
	} {
		r, b := newPage(t)
		b[7] = tc.nrExtra
		binary.LittleEndian.PutUint32(b, tc.length)
		b[4] = byte(StateSubmit)
		off := HeaderSize + 4*int(tc.nrExtra)
		b[off], b[off+1] = 0x80, 0x01 // a TPM 2.0 tag where the command starts
		req, err := r.Request(nil)
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("nr_extra %d length %d: %v, want ErrTooLong", tc.nrExtra, tc.length, err)
		}
		// What is on the page of the tag is kept for a family-matched error.
		if len(req.Cmd) != 2 || req.Cmd[0] != 0x80 || req.Cmd[1] != 0x01 {
			t.Errorf("nr_extra %d length %d: Cmd %x, want the tag 8001", tc.nrExtra, tc.length, req.Cmd)
		}
		// The error answer must still fit where the frontend looks.
		if err := r.Finish(req, make([]byte, 10)); err != nil {
			t.Errorf("error response refused: %v", err)
		}
		b[4] = byte(StateFinish)
		binary.LittleEndian.PutUint32(b, tc.length)
		if _, err := r.Response(nil); !errors.Is(err, ErrTooLong) {
			t.Errorf("frontend accepted response length %d: %v", tc.length, err)
		}
	}
}

func TestFinishTooLong(t *testing.T) {
	r, b := newPage(t)
	r.Submit(0, []byte{1})
	req, _ := r.Request(nil)
	if err := r.Finish(req, make([]byte, MaxData+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("oversized response: %v", err)
	}
	if r.State() != StateSubmit || binary.LittleEndian.Uint32(b) != 1 {
		t.Fatal("a refused response changed the page")
	}
}

func TestCancelIdle(t *testing.T) {
	r, _ := newPage(t)
	r.Submit(0, []byte{1})
	r.Cancel()
	if r.State() != StateCancel {
		t.Fatalf("state %v after Cancel", r.State())
	}
	r.Idle()
	if r.State() != StateIdle {
		t.Fatalf("state %v after Idle", r.State())
	}
	if StateCancel.String() != "CANCEL" || State(7).String() != "State(7)" {
		t.Error("state names")
	}
}

// FuzzPage feeds arbitrary page contents to both parsers: they must not
// panic, and whatever they accept lies inside the page.
func FuzzPage(f *testing.F) {
	seed := make([]byte, 64)
	binary.LittleEndian.PutUint32(seed, 12)
	seed[4] = 1
	f.Add(seed)
	big := make([]byte, 8)
	binary.LittleEndian.PutUint32(big, 4089)
	f.Add(big)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := make([]byte, PageSize)
		copy(b, data)
		r, err := New(shm.New(b))
		if err != nil {
			t.Fatal(err)
		}
		off := HeaderSize + 4*int(b[7])
		n := int(binary.LittleEndian.Uint32(b))
		req, err := r.Request(nil)
		if err == nil {
			if len(req.Cmd) == 0 || off+len(req.Cmd) > PageSize || len(req.Cmd) != n {
				t.Fatalf("accepted %d bytes at offset %d", len(req.Cmd), off)
			}
		}
		if req.MaxResponse() < 10 {
			t.Fatalf("no room for an error response: %d", req.MaxResponse())
		}
		rsp, err := r.Response(nil)
		if err == nil && (len(rsp) == 0 || off+len(rsp) > PageSize || State(b[4]) != StateFinish) {
			t.Fatalf("accepted response of %d bytes at offset %d in state %d", len(rsp), off, b[4])
		}
	})
}
