package tpm2

import (
	"bytes"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

func TestStartupRequired(t *testing.T) {
	tp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{tp}
	_, err = (gt.GetRandom{BytesRequested: 8}).Execute(tr)
	wantRC(t, err, rcInitialize)
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	_, err = (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr)
	wantRC(t, err, rcInitialize)
	r, err := (gt.GetRandom{BytesRequested: 32}).Execute(tr)
	if err != nil || len(r.RandomBytes.Buffer) != 32 {
		t.Fatalf("GetRandom: %v %d", err, len(r.RandomBytes.Buffer))
	}
}

func TestTPM12CommandGetsBadTag(t *testing.T) {
	tp, _ := newStarted(t)
	// TPM 1.2 TPM_GetCapability as xen-tpmfront/Linux send at probe.
	cmd := []byte{0x00, 0xC1, 0, 0, 0, 0x16, 0, 0, 0, 0x65, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 1, 1}
	rsp := tp.Process(cmd, 0)
	want := []byte{0x00, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0x1E}
	if !bytes.Equal(rsp, want) {
		t.Fatalf("got % x, want % x", rsp, want)
	}
}
