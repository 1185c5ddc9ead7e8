package tpm2

import (
	"encoding/binary"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// pinTestIndex is an owner-defined PIN index with authValue "pin",
// written with pinCount and pinLimit.
func pinTestIndex(t *testing.T, tr transport.TPM, h gt.TPMHandle, nt gt.TPMNT, count, limit uint32) {
	t.Helper()
	pub := gt.TPMSNVPublic{NVIndex: h, NameAlg: gt.TPMAlgSHA256, DataSize: 8,
		Attributes: gt.TPMANV{NT: nt, OwnerWrite: true, OwnerRead: true, AuthRead: true, NoDA: true}}
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, Auth: gt.TPM2BAuth{Buffer: []byte("pin")},
		PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
		t.Fatalf("NV_DefineSpace: %v", err)
	}
	pinTestSet(t, tr, h, count, limit)
}

func pinTestSet(t *testing.T, tr transport.TPM, h gt.TPMHandle, count, limit uint32) {
	t.Helper()
	d := binary.BigEndian.AppendUint32(u32(count), limit)
	if _, err := (gt.NVWrite{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: h, Name: nvName(t, tr, h)},
		Data: gt.TPM2BMaxNVBuffer{Buffer: d}}).Execute(tr); err != nil {
		t.Fatalf("NV_Write: %v", err)
	}
}

// pinTestRead reads index h authorized by its own authValue pw and
// returns the response code.
func pinTestRead(tr transport.TPM, h gt.TPMHandle, pw string) uint32 {
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCNVRead), []uint32{uint32(h), uint32(h)}, passwordAuth([]byte(pw)), append(u16(8), u16(0)...)))
	return responseCode(rsp)
}

func pinTestCount(t *testing.T, tp *TPM, h gt.TPMHandle) uint32 {
	t.Helper()
	c, _ := tp.ps.nv[uint32(h)].pin()
	return c
}

// Every use of a PIN index's authValue that moves its pinCount is a
// durable change the host must save before it answers, although the
// command (NV_Read, PolicySecret) writes nothing otherwise; a use that
// leaves pinCount as it was is none. WritesNV warns a host that rations
// saves of such commands while a PIN index is defined.
func TestPinAuthIsADurableChange(t *testing.T) {
	tp, tr := newStarted(t)
	const pass, fail = 0x01500050, 0x01500051
	for _, cc := range []gt.TPMCC{gt.TPMCCNVRead, gt.TPMCCPolicySecret, gt.TPMCCNVCertify} {
		if tp.WritesNV(uint32(cc)) {
			t.Errorf("WritesNV(%v) without a PIN index", cc)
		}
	}
	pinTestIndex(t, tr, pass, gt.TPMNTPinPass, 0, 2)
	pinTestIndex(t, tr, fail, gt.TPMNTPinFail, 0, 2)
	for _, cc := range []gt.TPMCC{gt.TPMCCNVRead, gt.TPMCCPolicySecret, gt.TPMCCNVCertify} {
		if !tp.WritesNV(uint32(cc)) {
			t.Errorf("WritesNV(%v) = false with a PIN index defined", cc)
		}
	}
	if tp.WritesNV(uint32(gt.TPMCCUnseal)) {
		t.Error("WritesNV(Unseal): an NV index cannot authorize it")
	}
	tp.NVChanged()
	cases := []struct {
		what    string
		h       gt.TPMHandle
		pw      string
		rc      uint32
		count   uint32
		durable bool
	}{
		{"PIN_PASS success", pass, "pin", rcSuccess, 1, true},
		{"PIN_PASS failure", pass, "bad", rcBadAuth | 0x900, 1, false},
		{"PIN_PASS success to the limit", pass, "pin", rcSuccess, 2, true},
		{"PIN_PASS at its limit", pass, "pin", rcAuthUnavailable, 2, false},
		{"PIN_FAIL success at 0", fail, "pin", rcSuccess, 0, false},
		{"PIN_FAIL failure", fail, "bad", rcBadAuth | 0x900, 1, true},
		{"PIN_FAIL success resets", fail, "pin", rcSuccess, 0, true},
		{"PIN_FAIL failure again", fail, "bad", rcBadAuth | 0x900, 1, true},
		{"PIN_FAIL failure to the limit", fail, "bad", rcBadAuth | 0x900, 2, true},
		{"PIN_FAIL at its limit, right password", fail, "pin", rcAuthUnavailable, 2, false},
	}
	for _, c := range cases {
		if rc := pinTestRead(tr, c.h, c.pw); rc != c.rc {
			t.Errorf("%s: rc 0x%x, want 0x%x", c.what, rc, c.rc)
		}
		if got := pinTestCount(t, tp, c.h); got != c.count {
			t.Errorf("%s: pinCount %d, want %d", c.what, got, c.count)
		}
		if got := tp.NVChanged(); got != c.durable {
			t.Errorf("%s: NVChanged = %v, want %v", c.what, got, c.durable)
		}
	}
	// The counts survive a save and a restart.
	tp2, err := New(Config{State: save(t, tp)})
	if err != nil {
		t.Fatal(err)
	}
	if p, f := pinTestCount(t, tp2, pass), pinTestCount(t, tp2, fail); p != 2 || f != 2 {
		t.Errorf("after Load: pinCounts %d, %d, want 2, 2", p, f)
	}
}

// PolicySecret with a PIN index uses its authValue: it counts, and it is
// refused at the limit.
func TestPinPolicySecret(t *testing.T) {
	tp, tr := newStarted(t)
	const pass = 0x01500052
	pinTestIndex(t, tr, pass, gt.TPMNTPinPass, 0, 1)
	tp.NVChanged()
	secret := func() error {
		s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer closer()
		_, err = (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: pass, Name: nvName(t, tr, pass), Auth: gt.PasswordAuth([]byte("pin"))},
			PolicySession: s.Handle(), NonceTPM: s.NonceTPM()}).Execute(tr)
		return err
	}
	if err := secret(); err != nil {
		t.Fatalf("PolicySecret: %v", err)
	}
	if !tp.NVChanged() || pinTestCount(t, tp, pass) != 1 {
		t.Errorf("PolicySecret did not count: pinCount %d", pinTestCount(t, tp, pass))
	}
	wantRC(t, secret(), rcAuthUnavailable)
}

// The definition rules of Part 3 §31.3.1 for PIN indices.
func TestPinDefineSpace(t *testing.T) {
	_, tr := newStarted(t)
	define := func(nt gt.TPMNT, a gt.TPMANV, size uint16) error {
		a.NT, a.OwnerWrite, a.OwnerRead = nt, true, true
		pub := gt.TPMSNVPublic{NVIndex: 0x01500053, NameAlg: gt.TPMAlgSHA256, Attributes: a, DataSize: size}
		_, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(pub)}).Execute(tr)
		if err == nil {
			(gt.NVUndefineSpace{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: pub.NVIndex, Name: nvName(t, tr, pub.NVIndex)}}).Execute(tr)
		}
		return err
	}
	attrs := rcAttributes | 0x240 // parameter 2, publicInfo
	for _, c := range []struct {
		nt   gt.TPMNT
		a    gt.TPMANV
		size uint16
		rc   uint32
	}{
		{gt.TPMNTPinPass, gt.TPMANV{}, 8, rcSuccess},
		{gt.TPMNTPinPass, gt.TPMANV{}, 16, rcSize | 0x240},
		{gt.TPMNTPinPass, gt.TPMANV{AuthWrite: true}, 8, attrs},
		{gt.TPMNTPinPass, gt.TPMANV{GlobalLock: true}, 8, attrs},
		{gt.TPMNTPinPass, gt.TPMANV{WriteDefine: true}, 8, attrs},
		{gt.TPMNTPinFail, gt.TPMANV{}, 8, attrs},
		{gt.TPMNTPinFail, gt.TPMANV{NoDA: true}, 8, rcSuccess},
		{gt.TPMNTPinFail, gt.TPMANV{NoDA: true, AuthWrite: true}, 8, attrs},
	} {
		err := define(c.nt, c.a, c.size)
		if c.rc == rcSuccess {
			if err != nil {
				t.Errorf("type %d %+v: %v", c.nt, c.a, err)
			}
			continue
		}
		wantRC(t, err, c.rc)
	}
}

// A session cannot be bound to a PIN index: its authValue would then be
// used without being counted.
func TestPinIndexCannotBeBound(t *testing.T) {
	_, tr := newStarted(t)
	const pass gt.TPMHandle = 0x01500054
	pinTestIndex(t, tr, pass, gt.TPMNTPinPass, 0, 5)
	_, err := (gt.StartAuthSession{TPMKey: gt.TPMRHNull, Bind: pass, NonceCaller: gt.TPM2BNonce{Buffer: make([]byte, 16)},
		SessionType: gt.TPMSEHMAC, Symmetric: gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}, AuthHash: gt.TPMAlgSHA256}).Execute(tr)
	wantRC(t, err, rcHandle|0x200)
}
