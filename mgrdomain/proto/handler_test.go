package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// fakeBackend is an in-memory manager for the dispatcher tests.
type fakeBackend struct {
	mu        sync.Mutex
	keys      map[[16]byte][]byte
	deny      map[[16]byte]bool // peers that fail authorisation
	authCalls int
	saves     int
	loads     int
	random    func(n int) ([]byte, error)
	pcr       bool
	saveErr   error // SaveHashKey's answer, when set
}

func newFake() *fakeBackend {
	return &fakeBackend{keys: map[[16]byte][]byte{}, deny: map[[16]byte]bool{}}
}

func (f *fakeBackend) Authorize(p PeerInfo, h Header) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authCalls++
	if f.deny[p.UUID] {
		return fmt.Errorf("kernel hash of %v not in its group", p)
	}
	if h.Tag == TagMgmtReq && p.DomID != 0 {
		return fmt.Errorf("%w: not the admin vTPM", ErrForbidden)
	}
	return nil
}

func (f *fakeBackend) SaveHashKey(u [16]byte, b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.saveErr != nil {
		return f.saveErr
	}
	f.saves++
	f.keys[u] = b
	return nil
}

func (f *fakeBackend) LoadHashKey(u [16]byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	b, ok := f.keys[u]
	if !ok {
		return nil, fmt.Errorf("uuid %x: %w", u, ErrNotFound)
	}
	return b, nil
}

func (f *fakeBackend) GetRandom(n int) ([]byte, error) {
	if f.random != nil {
		return f.random(n)
	}
	return bytes.Repeat([]byte{0xAB}, n), nil
}

type pcrBackend struct{ *fakeBackend }

func (pcrBackend) PCRRead(i uint32) ([20]byte, error) {
	if i >= 24 {
		return [20]byte{}, fmt.Errorf("PCR %d out of range", i)
	}
	var d [20]byte
	d[0] = byte(i)
	return d, nil
}

var (
	peerA = PeerInfo{DomID: 5, DevID: 0, UUID: [16]byte{1, 2, 3}}
	peerB = PeerInfo{DomID: 6, DevID: 0, UUID: [16]byte{9, 9, 9}}
)

func code(t *testing.T, resp []byte) (uint16, uint32) {
	t.Helper()
	if len(resp) < HeaderSize || len(resp) > MaxMessage {
		t.Fatalf("response of %d bytes", len(resp))
	}
	if got := binary.BigEndian.Uint32(resp[2:6]); got != uint32(len(resp)) {
		t.Fatalf("response paramSize %d for %d bytes", got, len(resp))
	}
	return binary.BigEndian.Uint16(resp), binary.BigEndian.Uint32(resp[6:10])
}

func raw(tag uint16, size uint32, ord uint32, params []byte) []byte {
	b := make([]byte, 10, 10+len(params))
	binary.BigEndian.PutUint16(b, tag)
	binary.BigEndian.PutUint32(b[2:], size)
	binary.BigEndian.PutUint32(b[6:], ord)
	return append(b, params...)
}

func TestSaveLoad(t *testing.T) {
	f := newFake()
	h := &Handler{Backend: f}
	for _, n := range []int{52, 53, 60, 64} {
		blob := bytes.Repeat([]byte{byte(n)}, n)
		req, err := EncodeSaveHashKey(blob)
		if err != nil {
			t.Fatal(err)
		}
		tag, rc := code(t, h.Handle(req, peerA))
		if tag != TagVTPMRsp || rc != ReturnSuccess {
			t.Fatalf("SAVEHASHKEY %d bytes: tag %#x rc %d", n, tag, rc)
		}
		got, err := DecodeLoadHashKeyResponse(h.Handle(EncodeLoadHashKey(), peerA))
		if err != nil {
			t.Fatal(err)
		}
		// The reply is the zero-padded 64-byte slot, cut to 52 bytes when
		// bytes 52..63 are zero — the original manager's shape.
		want := make([]byte, 64)
		copy(want, blob)
		if n == 52 {
			want = want[:52]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("LOADHASHKEY after %d-byte save: %x, want %x", n, got, want)
		}
	}
	// A 64-byte blob whose tail is zero also comes back as 52 bytes.
	blob := append(bytes.Repeat([]byte{7}, 52), make([]byte, 12)...)
	req, _ := EncodeSaveHashKey(blob)
	h.Handle(req, peerA)
	got, err := DecodeLoadHashKeyResponse(h.Handle(EncodeLoadHashKey(), peerA))
	if err != nil || len(got) != 52 {
		t.Fatalf("zero-tailed blob: %d bytes, %v", len(got), err)
	}
	// Another vTPM has no key.
	_, rc := code(t, h.Handle(EncodeLoadHashKey(), peerB))
	if rc != TPMKeyNotFound {
		t.Fatalf("unknown vTPM: rc %d, want TPM_KEYNOTFOUND", rc)
	}
}

func TestMalformed(t *testing.T) {
	f := newFake()
	h := &Handler{Backend: f}
	big := make([]byte, MaxMessage+1)
	copy(big, raw(TagVTPMReq, uint32(len(big)), OrdSaveHashKey, nil))
	cases := []struct {
		name string
		req  []byte
		tag  uint16
		rc   uint32
	}{
		{"empty", nil, TagTPMRsp, TPMBadParameter},
		{"one byte", []byte{0x01}, TagTPMRsp, TPMBadParameter},
		{"short header", raw(TagVTPMReq, 10, 1, nil)[:9], TagVTPMRsp, TPMBadParameter},
		{"size too big", raw(TagVTPMReq, 11, OrdLoadHashKey, nil), TagVTPMRsp, TPMBadParamSize},
		{"size too small", raw(TagVTPMReq, 10, OrdSaveHashKey, make([]byte, 52)), TagVTPMRsp, TPMBadParamSize},
		{"size huge", raw(TagVTPMReq, 0xFFFFFFFF, OrdLoadHashKey, nil), TagVTPMRsp, TPMBadParamSize},
		{"oversize", big, TagVTPMRsp, TPMSize},
		{"unknown tag", raw(0x1234, 10, 1, nil), TagTPMRsp, TPMBadTag},
		{"response tag as request", raw(TagVTPMRsp, 10, 1, nil), TagTPMRsp, TPMBadTag},
		{"unknown vTPM ordinal", raw(TagVTPMReq, 10, 99, nil), TagVTPMRsp, TPMBadOrdinal},
		{"save 51 bytes", raw(TagVTPMReq, 61, OrdSaveHashKey, make([]byte, 51)), TagVTPMRsp, TPMBadParameter},
		{"save 65 bytes", raw(TagVTPMReq, 75, OrdSaveHashKey, make([]byte, 65)), TagVTPMRsp, TPMBadParameter},
		{"save nothing", raw(TagVTPMReq, 10, OrdSaveHashKey, nil), TagVTPMRsp, TPMBadParameter},
		{"load with params", raw(TagVTPMReq, 11, OrdLoadHashKey, []byte{0}), TagVTPMRsp, TPMBadParameter},
		{"boot hash", raw(TagVTPMReq, 10, OrdGetBootHash, nil), TagVTPMRsp, ReturnUnsupported},
		{"deep quote", raw(TagVTPMReq, 10, OrdGetQuote, nil), TagVTPMRsp, ReturnUnsupported},
		{"mgmt from non-admin", raw(TagMgmtReq, 10, OrdGroupList, nil), TagMgmtRsp, TPMAuthFail},
		{"GetRandom short", raw(TagTPMReq, 12, OrdTPMGetRandom, []byte{0, 1}), TagTPMRsp, TPMBadParamSize},
		{"PcrRead not offered", raw(TagTPMReq, 14, OrdTPMPcrRead, make([]byte, 4)), TagTPMRsp, TPMDisabledCmd},
		{"TPM Extend", raw(TagTPMReq, 34, 20, make([]byte, 24)), TagTPMRsp, TPMDisabledCmd},
		{"auth-tag GetRandom", raw(TagTPMReqA1, 14, OrdTPMGetRandom, make([]byte, 4)), TagTPMReqA1 + 3, TPMDisabledCmd},
	}
	for _, c := range cases {
		resp, err := h.Serve(c.req, peerA)
		tag, rc := code(t, resp)
		if tag != c.tag || rc != c.rc || err == nil {
			t.Errorf("%s: tag %#x rc %d (err %v), want tag %#x rc %d and an error", c.name, tag, rc, err, c.tag, c.rc)
		}
	}
	if f.saves+f.loads != 0 {
		t.Fatalf("malformed requests reached the backend: %d saves, %d loads", f.saves, f.loads)
	}
}

func TestManagementUnsupported(t *testing.T) {
	h := &Handler{Backend: newFake()}
	admin := PeerInfo{DomID: 0}
	// Well-formed requests: without an Admin, or an ordinal nobody serves.
	for _, req := range [][]byte{
		raw(TagMgmtReq, 10, OrdGroupList, nil),
		raw(TagMgmtReq, 18, OrdVTPMList, make([]byte, 8)),
		raw(TagMgmtReq, 14, OrdVTPMNew, make([]byte, 4)),
		raw(TagMgmtReq, 10, OrdGroupRegister, nil),
		raw(TagMgmtReq, 10, OrdGroupRecover2, nil),
		raw(TagMgmtReq, 10, 0x02000301, nil),
		raw(TagMgmtReq, 10, 0x02000306, nil),
	} {
		tag, rc := code(t, h.Handle(req, admin))
		if tag != TagMgmtRsp || rc != ReturnUnsupported {
			t.Errorf("ordinal %#x: tag %#x rc %d, want VTPM_UNSUPPORTED", binary.BigEndian.Uint32(req[6:]), tag, rc)
		}
	}
	if _, rc := code(t, h.Handle(raw(TagMgmtReq, 10, 0x02000999, nil), admin)); rc != TPMBadOrdinal {
		t.Errorf("unknown management ordinal: rc %d", rc)
	}
}

// TestRepeatAfterAuthFailure: the original manager remembered the peer's
// vTPM before checking its kernel hash, so the same request sent again on
// the connection skipped the check. Here every repeat is
// checked again and refused, and nothing reaches the key table.
func TestRepeatAfterAuthFailure(t *testing.T) {
	f := newFake()
	h := &Handler{Backend: f}
	f.keys[peerB.UUID] = bytes.Repeat([]byte{0x55}, 52)
	f.deny[peerB.UUID] = true
	save, _ := EncodeSaveHashKey(bytes.Repeat([]byte{1}, 64))
	for round := range 3 {
		for _, req := range [][]byte{EncodeLoadHashKey(), save, raw(TagVTPMReq, 10, OrdGetQuote, nil)} {
			resp, err := h.Serve(req, peerB)
			if _, rc := code(t, resp); rc != TPMAuthFail || !errors.Is(err, ErrForbidden) {
				t.Fatalf("round %d: rc %d (%v), want TPM_AUTHFAIL", round, rc, err)
			}
			if len(resp) != HeaderSize {
				t.Fatalf("round %d: refused response carries %d bytes of data", round, len(resp)-HeaderSize)
			}
		}
	}
	if f.authCalls != 9 {
		t.Fatalf("authorisation asked %d times for 9 requests", f.authCalls)
	}
	if f.loads != 0 || f.saves != 0 || !bytes.Equal(f.keys[peerB.UUID], bytes.Repeat([]byte{0x55}, 52)) {
		t.Fatalf("refused peer reached the table: %d loads, %d saves", f.loads, f.saves)
	}
	// Once the manager authorises it, the same request works.
	f.deny[peerB.UUID] = false
	if _, err := DecodeLoadHashKeyResponse(h.Handle(EncodeLoadHashKey(), peerB)); err != nil {
		t.Fatal(err)
	}
}

func TestGetRandom(t *testing.T) {
	f := newFake()
	h := &Handler{Backend: f}
	for _, n := range []uint32{0, 1, 20, 4000, MaxRandom, MaxRandom + 1, 1 << 31, 0xFFFFFFFF} {
		resp := h.Handle(EncodeGetRandom(n), peerA)
		got, err := DecodeGetRandomResponse(resp)
		if err != nil {
			t.Fatalf("GetRandom(%d): %v", n, err)
		}
		if want := min(n, MaxRandom); uint32(len(got)) != want {
			t.Fatalf("GetRandom(%d): %d bytes, want %d", n, len(got), want)
		}
	}
	f.random = func(n int) ([]byte, error) { return make([]byte, n+1), nil }
	if _, rc := code(t, h.Handle(EncodeGetRandom(8), peerA)); rc != TPMFail {
		t.Fatalf("backend over-delivering: rc %d, want TPM_FAIL", rc)
	}
	f.random = func(int) ([]byte, error) { return nil, errors.New("TPM busy") }
	if _, rc := code(t, h.Handle(EncodeGetRandom(8), peerA)); rc != TPMFail {
		t.Fatalf("backend failing: rc %d, want TPM_FAIL", rc)
	}
}

func TestPCRRead(t *testing.T) {
	h := &Handler{Backend: pcrBackend{newFake()}}
	p, err := ParseResponse(h.Handle(EncodePCRRead(7), peerA), TagTPMReq)
	if err != nil || len(p) != 20 || p[0] != 7 {
		t.Fatalf("PcrRead(7): %x %v", p, err)
	}
	if _, rc := code(t, h.Handle(EncodePCRRead(99), peerA)); rc != TPMFail {
		t.Fatalf("PcrRead(99): rc %d", rc)
	}
}

func TestClientEncoders(t *testing.T) {
	if _, err := EncodeSaveHashKey(make([]byte, 51)); err == nil {
		t.Fatal("51-byte blob encoded")
	}
	if _, err := EncodeSaveHashKey(make([]byte, 65)); err == nil {
		t.Fatal("65-byte blob encoded")
	}
	if _, err := ParseResponse(raw(TagTPMRsp, 10, 0, nil), TagVTPMReq); err == nil {
		t.Fatal("wrong response tag accepted")
	}
	var pe *Error
	if _, err := ParseResponse(raw(TagVTPMRsp, 10, TPMKeyNotFound, nil), TagVTPMReq); !errors.As(err, &pe) || pe.Code != TPMKeyNotFound {
		t.Fatalf("error response: %v", err)
	}
	if _, err := DecodeLoadHashKeyResponse(raw(TagVTPMRsp, 30, 0, make([]byte, 20))); err == nil {
		t.Fatal("20-byte LOADHASHKEY reply accepted")
	}
	if _, err := DecodeGetRandomResponse(raw(TagTPMRsp, 16, 0, []byte{0, 0, 0, 9, 1, 2})); err == nil {
		t.Fatal("GetRandom reply with a wrong count accepted")
	}
}

func TestConcurrentPeers(t *testing.T) {
	f := newFake()
	h := &Handler{Backend: f}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := PeerInfo{DomID: uint32(i + 1), UUID: [16]byte{byte(i)}}
			blob := bytes.Repeat([]byte{byte(i + 1)}, 64)
			req, _ := EncodeSaveHashKey(blob)
			for range 50 {
				if _, err := ParseResponse(h.Handle(req, p), TagVTPMReq); err != nil {
					t.Error(err)
					return
				}
				got, err := DecodeLoadHashKeyResponse(h.Handle(EncodeLoadHashKey(), p))
				if err != nil || !bytes.Equal(got, blob) {
					t.Errorf("peer %d: %x %v", i, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDecodeRequest(t *testing.T) {
	save, _ := EncodeSaveHashKey(bytes.Repeat([]byte{3}, 60))
	cases := []struct {
		req  []byte
		want any
	}{
		{save, SaveHashKey{Blob: bytes.Repeat([]byte{3}, 60)}},
		{EncodeLoadHashKey(), LoadHashKey{}},
		{EncodeGetRandom(33), GetRandom{N: 33}},
		{EncodePCRRead(17), PCRRead{Index: 17}},
		{raw(TagVTPMReq, 10, OrdGetQuote, nil), Unsupported{TagVTPMReq, OrdGetQuote}},
		{raw(TagMgmtReq, 10, OrdGroupQuote, nil), Unsupported{TagMgmtReq, OrdGroupQuote}},
		{raw(TagTPMReq, 10, 0x99, nil), NotPassedThrough{TagTPMReq, 0x99}},
	}
	for _, c := range cases {
		_, got, err := DecodeRequest(c.req)
		if err != nil {
			t.Fatalf("%T: %v", c.want, err)
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", c.want) {
			t.Errorf("decoded %#v, want %#v", got, c.want)
		}
	}
}

// successAuth is a buggy Backend whose refusal carries code 0: the
// handler must still not answer success.
type successAuth struct{ *fakeBackend }

func (successAuth) Authorize(PeerInfo, Header) error { return &Error{Code: ReturnSuccess, Msg: "no"} }

func TestRefusalNeverSuccess(t *testing.T) {
	f := newFake()
	h := &Handler{Backend: successAuth{f}}
	if _, rc := code(t, h.Handle(EncodeLoadHashKey(), peerA)); rc == ReturnSuccess {
		t.Fatal("refused request answered with success")
	}
	if f.loads != 0 {
		t.Fatal("refused request reached the backend")
	}
}

// A manager that cannot make a save durable yet says so with TPM_RETRY,
// which the client recognises as "try later", not as a failure.
func TestBusy(t *testing.T) {
	f := newFake()
	f.saveErr = fmt.Errorf("hardware says NV_RATE: %w", ErrBusy)
	h := &Handler{Backend: f}
	req, err := EncodeSaveHashKey(bytes.Repeat([]byte{1}, HashKeyMax))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseResponse(h.Handle(req, PeerInfo{UUID: [16]byte{1}}), TagVTPMReq)
	if !IsBusy(err) {
		t.Fatalf("busy manager answered %v, want TPM_RETRY", err)
	}
	f.saveErr = errors.New("disk on fire")
	if _, err = ParseResponse(h.Handle(req, PeerInfo{UUID: [16]byte{1}}), TagVTPMReq); err == nil || IsBusy(err) {
		t.Fatalf("failing manager answered %v, want a failure that is not TPM_RETRY", err)
	}
}

// DEEP_QUOTE names the caller's PCR bank; a request without it (a vTPM
// from before the TPM 1.2 personality's deep quote) is of SHA-256, and
// a bank the binding cannot name is refused.
func TestDeepQuoteBank(t *testing.T) {
	d := bytes.Repeat([]byte{5}, 32)
	m := DeepQuote{Nonce: []byte("n"), PCRs: 1 << 16, Bank: bankSHA1}
	copy(m.PCRDigest[:], d)
	req, err := EncodeDeepQuote(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := DecodeRequest(req); err != nil || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", m) {
		t.Fatalf("round trip: %#v, %v", got, err)
	}
	old := raw(TagVTPMReq, 10+1+1+4+32, OrdDeepQuote, append(append([]byte{1, 'n'}, 0, 1, 0, 0), d...))
	if _, got, err := DecodeRequest(old); err != nil || got.(DeepQuote).Bank != bankSHA256 {
		t.Errorf("a request without a bank: %#v, %v", got, err)
	}
	bad := bytes.Clone(req)
	bad[len(bad)-1] = 0x12
	if _, _, err := DecodeRequest(bad); err == nil {
		t.Error("bank 0x0012 decoded")
	}
	if _, err := EncodeDeepQuote(DeepQuote{Bank: 0x0012}); err == nil {
		t.Error("bank 0x0012 encoded")
	}
}

// CERTIFY_EK's family: absent is TPM 2.0, 1 a TPM 1.2 EK's TPM_PUBKEY,
// anything else refused.
func TestCertifyEKFamily(t *testing.T) {
	m := CertifyEK{Manufacturer: 1, Version: 2, Model: "m", Public: []byte{1, 2, 3}, Family: FamilyEK12}
	req, err := EncodeCertifyEK(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := DecodeRequest(req); err != nil || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", m) {
		t.Fatalf("round trip: %#v, %v", got, err)
	}
	m.Family = 0
	req, _ = EncodeCertifyEK(m)
	if _, got, err := DecodeRequest(req); err != nil || got.(CertifyEK).Family != FamilyEK20 {
		t.Errorf("without a family: %#v, %v", got, err)
	}
	bad := append(bytes.Clone(req), 7)
	binary.BigEndian.PutUint32(bad[2:], uint32(len(bad)))
	if _, _, err := DecodeRequest(bad); err == nil {
		t.Error("family 7 decoded")
	}
}
