package tpm12

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"maps"
	"testing"
)

// ordTestAuth is an ordinal no TPM 1.2 defines, given in these tests to
// a command authorized by the owner, to drive the session machinery
// before the commands that use it exist.
const ordTestAuth uint32 = 0x7FFF0001

type testAuthIn struct {
	Handle uint32
	Data   digest
}

func (p *testAuthIn) unmarshal(r *reader) {
	p.Handle = r.u32()
	p.Data = r.digest()
}

// withTestAuth gives tp the owner ownerAuth and the owner-authorized
// test command, which answers SHA-1 of its data.
func withTestAuth(tp *TPM, ownerAuth digest) {
	tp.ps.Owned, tp.ps.OwnerAuth = true, ownerAuth
	tp.commands = maps.Clone(tp.commands)
	tp.commands[ordTestAuth] = cmd(ordTestAuth, func(t *TPM, c *call, in *testAuthIn) (*digestOut, error) {
		if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
			return nil, err
		}
		return &digestOut{Digest: sha1.Sum(in.Data[:])}, nil
	}, withAuth(auth1), withHandles(1))
}

func hmac1(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha1.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func sha(parts ...[]byte) []byte {
	h := sha1.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// authCall sends the test command on session h with nonceEven, keyed by
// key, and checks the response authorization; it returns the response
// code and the new nonceEven.
func authCall(t *testing.T, tp *TPM, h uint32, key, nonceEven []byte, cont bool, corrupt bool) (uint32, []byte) {
	t.Helper()
	data := bytes.Repeat([]byte{9}, 20)
	nonceOdd := bytes.Repeat([]byte{0x0D}, 20)
	c := byte(0)
	if cont {
		c = 1
	}
	inDigest := sha(u32(ordTestAuth), data) // the handle is not a 1S parameter
	mac := hmac1(key, inDigest, nonceEven, nonceOdd, []byte{c})
	if corrupt {
		mac[0] ^= 1
	}
	rsp := tp.Process(command(tagRquAuth1, ordTestAuth, u32(0x40000001), data, u32(h), nonceOdd, []byte{c}, mac), 0)
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != rcSuccess {
		if binary.BigEndian.Uint16(rsp) != tagRspCommand || len(rsp) != 10 {
			t.Errorf("error response %x", rsp)
		}
		return rc, nil
	}
	if binary.BigEndian.Uint16(rsp) != tagRspAuth1 || len(rsp) != 10+20+41 {
		t.Fatalf("response %x", rsp)
	}
	out, newEven, rc2, resAuth := rsp[10:30], rsp[30:50], rsp[50], rsp[51:71]
	if !bytes.Equal(out, sha(data)) {
		t.Errorf("output %x", out)
	}
	outDigest := sha(u32(0), u32(ordTestAuth), out)
	if rc2 != c || !hmac.Equal(resAuth, hmac1(key, outDigest, newEven, nonceOdd, []byte{c})) {
		t.Error("response authorization does not verify")
	}
	if bytes.Equal(newEven, nonceEven) {
		t.Error("nonceEven did not roll")
	}
	return rc, newEven
}

func TestOIAPAuthorization(t *testing.T) {
	tp := startedTPM(t)
	owner := digest(sha([]byte("owner")))
	withTestAuth(tp, owner)
	out := mustRun(t, tp, ordOIAP)
	if len(out) != 24 {
		t.Fatalf("OIAP response %x", out)
	}
	h, even := binary.BigEndian.Uint32(out), out[4:]
	rc, even := authCall(t, tp, h, owner[:], even, true, false)
	if rc != rcSuccess {
		t.Fatalf("rc %#x", rc)
	}
	// The rolled nonce is the one to use next; a replay of the old one
	// fails and ends the session.
	if rc, _ := authCall(t, tp, h, owner[:], even, true, false); rc != rcSuccess {
		t.Fatalf("second use: rc %#x", rc)
	}
	if rc, _ := authCall(t, tp, h, owner[:], even, true, false); rc != rcAuthFail {
		t.Fatalf("replayed nonce: rc %#x", rc)
	}
	if _, ok := tp.sessions[h]; ok {
		t.Error("session survived a failed authorization")
	}
	// A wrong secret, and continueAuthSession FALSE.
	out = mustRun(t, tp, ordOIAP)
	h, even = binary.BigEndian.Uint32(out), out[4:]
	if rc, _ := authCall(t, tp, h, []byte("wrong"), even, true, false); rc != rcAuthFail {
		t.Errorf("wrong secret: rc %#x", rc)
	}
	out = mustRun(t, tp, ordOIAP)
	h, even = binary.BigEndian.Uint32(out), out[4:]
	if rc, _ := authCall(t, tp, h, owner[:], even, false, false); rc != rcSuccess {
		t.Fatalf("rc %#x", rc)
	}
	if _, ok := tp.sessions[h]; ok {
		t.Error("session survived continueAuthSession FALSE")
	}
	if rc, _ := authCall(t, tp, h, owner[:], even, true, false); rc != rcInvalidAuthHandle {
		t.Errorf("ended session: rc %#x", rc)
	}
	// The tag must carry the session the command needs.
	wantRC(t, tp, rcBadTag, 0, tagRquCommand, ordTestAuth, u32(0x40000001), make([]byte, 20))
	wantRC(t, tp, rcBadParamSize, 0, tagRquAuth1, ordTestAuth, make([]byte, 10))
}

func TestOSAPAuthorization(t *testing.T) {
	tp := startedTPM(t)
	// Without an owner OSAP answers TPM_NOSRK, as the reference does.
	wantRC(t, tp, rcNoSRK, 0, tagRquCommand, ordOSAP, u16(uint16(etOwner)), u32(0), make([]byte, 20))
	owner := digest(sha([]byte("owner")))
	withTestAuth(tp, owner)
	oddOSAP := bytes.Repeat([]byte{0x55}, 20)
	out := mustRun(t, tp, ordOSAP, u16(uint16(etOwner)), u32(0x40000001), oddOSAP)
	if len(out) != 44 {
		t.Fatalf("OSAP response %x", out)
	}
	h, even, evenOSAP := binary.BigEndian.Uint32(out), out[4:24], out[24:44]
	shared := hmac1(owner[:], evenOSAP, oddOSAP)
	if rc, _ := authCall(t, tp, h, shared, even, true, false); rc != rcSuccess {
		t.Fatalf("OSAP: rc %#x", rc)
	}
	// The owner's authData itself is not the key of an OSAP session.
	out = mustRun(t, tp, ordOSAP, u16(uint16(etOwner)), u32(0), oddOSAP)
	h, even = binary.BigEndian.Uint32(out), out[4:24]
	if rc, _ := authCall(t, tp, h, owner[:], even, true, false); rc != rcAuthFail {
		t.Errorf("OSAP keyed by authData: rc %#x", rc)
	}
	wantRC(t, tp, rcInvalidKeyHandle, 0, tagRquCommand, ordOSAP, u16(uint16(etKeyHandle)), u32(0x01000000), oddOSAP)
	wantRC(t, tp, rcBadParameter, 0, tagRquCommand, ordOSAP, u16(0x0033), u32(0), oddOSAP)
	wantRC(t, tp, 0x0E, 0, tagRquCommand, ordOSAP, u16(0x0302), u32(0), oddOSAP)
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordOSAP, u16(0x0002), u32(0), oddOSAP[:10])
}

func TestSessionsFlushAndLimit(t *testing.T) {
	tp := startedTPM(t)
	var hs []uint32
	for i := 0; i < authSessionsMax; i++ {
		hs = append(hs, binary.BigEndian.Uint32(mustRun(t, tp, ordOIAP)))
	}
	wantRC(t, tp, rcResources, 0, tagRquCommand, ordOIAP)
	mustRun(t, tp, ordFlushSpecific, u32(hs[3]), u32(rtAuth))
	wantRC(t, tp, rcInvalidAuthHandle, 0, tagRquCommand, ordFlushSpecific, u32(hs[3]), u32(rtAuth))
	mustRun(t, tp, ordOIAP)
	wantRC(t, tp, rcBadParameter, 0, tagRquCommand, ordFlushSpecific, u32(0x01000000), u32(rtKey))
	wantRC(t, tp, rcInvalidResource, 0, tagRquCommand, ordFlushSpecific, u32(0), u32(0x77))
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordFlushSpecific, u32(0))
	// Startup and _TPM_Init end every session.
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	if len(tp.sessions) != 0 {
		t.Errorf("%d sessions after Startup", len(tp.sessions))
	}
}
