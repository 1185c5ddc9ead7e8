package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
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
	f.Add(EncodeGroupCACert(0))
	if dq, err := EncodeDeepQuote(DeepQuote{Nonce: []byte("n"), PCRs: 1}); err == nil {
		f.Add(dq)
	}
	f.Add(raw(TagMgmtReq, 14, OrdGroupAK, []byte{0, 0, 0, 0}))
	act := EncodeGroupActivate(GroupActivate{CredentialBlob: []byte{1}, Secret: []byte{2}})
	f.Add(raw(TagMgmtReq, uint32(10+len(act)), OrdGroupActivate, act))
	act12 := EncodeGroupActivate(GroupActivate{CredentialBlob: make([]byte, 256)}) // TPM 1.2: no secret
	f.Add(raw(TagMgmtReq, uint32(10+len(act12)), OrdGroupActivate, act12))
	if ek, err := EncodeCertifyEK(CertifyEK{Manufacturer: 1, Version: 2, Model: "m", Public: make([]byte, 118)}); err == nil {
		f.Add(ek)
	}
	if ek, err := EncodeCertifyEK(CertifyEK{Manufacturer: 1, Version: 2, Model: "m", Public: make([]byte, 284), Family: FamilyEK12}); err == nil {
		f.Add(ek)
	}
	if dq, err := EncodeDeepQuote(DeepQuote{Nonce: make([]byte, 20), PCRs: 1 << 16, Bank: bankSHA1}); err == nil {
		f.Add(dq)
	}
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

// FuzzClientDecoders feeds arbitrary manager answers to the vTPM side's
// decoders: no panic; a success only for a response that is framed for
// the request it answers, carries return code 0 and has the shape its
// ordinal promises; a non-zero code comes back as an *Error with it.
func FuzzClientDecoders(f *testing.F) {
	ok := func(tag uint16, params []byte) []byte {
		b, _ := EncodeResponse(tag, ReturnSuccess, params)
		return b
	}
	f.Add(ok(TagVTPMRsp, nil), uint8(0))
	f.Add(ok(TagVTPMRsp, make([]byte, HashKeyMax)), uint8(1))
	f.Add(ok(TagVTPMRsp, make([]byte, HashKeyMin)), uint8(1))
	f.Add(errorResponse(TagVTPMRsp, TPMKeyNotFound), uint8(1))
	f.Add(ok(TagTPMRsp, []byte{0, 0, 0, 4, 1, 2, 3, 4}), uint8(2))
	f.Add(ok(TagTPMRsp, []byte{0, 0, 0, 9, 1}), uint8(2))
	f.Add(ok(TagMgmtRsp, nil), uint8(3))
	f.Add([]byte{0x01, 0xC4, 0, 0, 0, 9}, uint8(0))
	tags := []uint16{TagVTPMReq, TagMgmtReq, TagTPMReq, TagTPMReqA1, TagTPMReqA2, 0x1234}
	f.Fuzz(func(t *testing.T, rsp []byte, which uint8) {
		framed := len(rsp) >= HeaderSize && len(rsp) <= MaxMessage &&
			binary.BigEndian.Uint32(rsp[2:6]) == uint32(len(rsp))
		code := uint32(0xFFFFFFFF)
		if len(rsp) >= HeaderSize {
			code = binary.BigEndian.Uint32(rsp[6:10])
		}
		checkCode := func(err error) {
			var pe *Error
			if framed && code != ReturnSuccess && errors.As(err, &pe) && pe.Code != code {
				t.Fatalf("*Error carries code %d, the response %d", pe.Code, code)
			}
		}
		switch which % 3 {
		case 0:
			reqTag := tags[int(which/3)%len(tags)]
			p, err := ParseResponse(rsp, reqTag)
			checkCode(err)
			if err != nil {
				return
			}
			if !framed || code != ReturnSuccess || binary.BigEndian.Uint16(rsp) != ResponseTag(reqTag) {
				t.Fatalf("ParseResponse accepted % x for request tag %#x", rsp, reqTag)
			}
			if !bytes.Equal(p, rsp[HeaderSize:]) {
				t.Fatal("parameters are not the bytes after the header")
			}
		case 1:
			blob, err := DecodeLoadHashKeyResponse(rsp)
			checkCode(err)
			if err == nil && (!framed || code != ReturnSuccess || (len(blob) != HashKeyMin && len(blob) != HashKeyMax)) {
				t.Fatalf("LOADHASHKEY answer % x accepted as a %d-byte blob", rsp, len(blob))
			}
		case 2:
			rnd, err := DecodeGetRandomResponse(rsp)
			checkCode(err)
			if err == nil && (!framed || code != ReturnSuccess || len(rsp) != HeaderSize+4+len(rnd) ||
				binary.BigEndian.Uint32(rsp[HeaderSize:]) != uint32(len(rnd))) {
				t.Fatalf("GetRandom answer % x accepted as %d bytes", rsp, len(rnd))
			}
		}
	})
}
