package proto

import (
	"encoding/binary"
	"testing"
)

// FuzzHandle feeds arbitrary requests to the decoder and dispatcher: no
// panic, and every answer is a well-formed response within MaxMessage
// whose tag matches the request's.
func FuzzHandle(f *testing.F) {
	save, _ := EncodeSaveHashKey(make([]byte, 64))
	f.Add(save)
	f.Add(EncodeLoadHashKey())
	f.Add(EncodeGetRandom(32))
	f.Add(EncodePCRRead(0))
	f.Add(raw(TagMgmtReq, 10, OrdGroupNew, nil))
	f.Add([]byte{0x01, 0xC1, 0, 0})
	h := &Handler{Backend: pcrBackend{newFake()}}
	admin := PeerInfo{DomID: 0, UUID: [16]byte{1}}
	f.Fuzz(func(t *testing.T, req []byte) {
		resp := h.Handle(req, admin)
		if len(resp) < HeaderSize || len(resp) > MaxMessage {
			t.Fatalf("response of %d bytes", len(resp))
		}
		if binary.BigEndian.Uint32(resp[2:6]) != uint32(len(resp)) {
			t.Fatal("response paramSize wrong")
		}
		r, _, err := DecodeRequest(req)
		if err != nil {
			if binary.BigEndian.Uint32(resp[6:10]) == ReturnSuccess {
				t.Fatalf("malformed request (%v) answered with success", err)
			}
			return
		}
		if r == nil {
			t.Fatal("DecodeRequest returned neither a request nor an error")
		}
		if got := binary.BigEndian.Uint16(resp); got != ResponseTag(r.Tag) {
			t.Fatalf("response tag %#x for request tag %#x", got, r.Tag)
		}
	})
}
