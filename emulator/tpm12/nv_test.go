package tpm12

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// nvPubInfo is a TPM_NV_DATA_PUBLIC without PCR restrictions.
func nvPubInfo(index, attrs, size uint32) []byte {
	info := pcrInfoShort{Select: pcrSelection{Select: make([]byte, 3)}, LocalityAtRelease: locAll}
	w := &writer{}
	(&nvDataPublic{Index: index, ReadInfo: info, WriteInfo: info, Attributes: attrs, DataSize: size}).marshal(w)
	return w.b
}

func nvWriteParams(index, offset uint32, data []byte) []byte {
	return append(append(append(u32(index), u32(offset)...), u32(uint32(len(data)))...), data...)
}

func nvReadParams(index, offset, size uint32) []byte {
	return append(append(u32(index), u32(offset)...), u32(size)...)
}

// nvDefineOwner defines an index on an owner OSAP session.
func nvDefineOwner(t testing.TB, tp *TPM, ownerAuth []byte, pub []byte, secret []byte) uint32 {
	t.Helper()
	odd := bytes.Repeat([]byte{0x51}, 20)
	out := mustRun(t, tp, ordOSAP, u16(uint16(etOwner)), u32(0), odd)
	h, even, shared := binary.BigEndian.Uint32(out), out[4:24], hmac1(ownerAuth, out[24:44], odd)
	pad := sha(shared, even)
	enc := make([]byte, 20)
	for i := range enc {
		enc[i] = secret[i] ^ pad[i]
	}
	rc, _ := authRun(t, tp, h, even, shared, ordNVDefineSpace, nil, append(pub, enc...))
	return rc
}

func TestNVBeforeNVLocked(t *testing.T) {
	tp := startedTPM(t)
	secret := sha([]byte("index"))
	tp.NVChanged()
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1000, nvPerOwnerWrite, 8), secret)
	if !tp.NVChanged() {
		t.Error("DefineSpace did not report an NV change")
	}
	if got := mustRun(t, tp, ordNVReadValue, nvReadParams(0x1000, 0, 8)); !bytes.Equal(got[4:], bytes.Repeat([]byte{0xFF}, 8)) {
		t.Errorf("fresh index %x", got)
	}
	// Unlocked, the owner's protection is not enforced.
	mustRun(t, tp, ordNVWriteValue, nvWriteParams(0x1000, 1, []byte("ab")))
	if !tp.NVChanged() {
		t.Error("WriteValue did not report an NV change")
	}
	if got := mustRun(t, tp, ordNVReadValue, nvReadParams(0x1000, 1, 2)); string(got[4:]) != "ab" {
		t.Errorf("read %x", got)
	}
	for _, c := range []struct {
		name   string
		want   uint32
		ord    uint32
		params []byte
	}{
		{"no write protection", rcPerNoWrite, ordNVDefineSpace, append(nvPubInfo(0x1001, 0, 4), secret...)},
		{"index 0", rcBadIndex, ordNVDefineSpace, append(nvPubInfo(0, nvPerOwnerWrite, 4), secret...)},
		{"owner and auth write", rcAuthConflict, ordNVDefineSpace, append(nvPubInfo(0x1001, nvPerOwnerWrite|nvPerAuthWrite, 4), secret...)},
		{"new index of size 0", rcBadParamSize, ordNVDefineSpace, append(nvPubInfo(0x1001, nvPerOwnerWrite, 0), secret...)},
		{"too large", rcNoSpace, ordNVDefineSpace, append(nvPubInfo(0x1001, nvPerOwnerWrite, nvSpaceMax), secret...)},
		{"write past the end", rcNoSpace, ordNVWriteValue, nvWriteParams(0x1000, 7, []byte("ab"))},
		{"read past the end", rcNoSpace, ordNVReadValue, nvReadParams(0x1000, 7, 2)},
		{"undefined index", rcBadIndex, ordNVReadValue, nvReadParams(0x2000, 0, 1)},
	} {
		if rc, _ := run(tp, 0, tagRquCommand, c.ord, c.params); rc != c.want {
			t.Errorf("%s: rc %#x, want %#x", c.name, rc, c.want)
		}
	}
	// Writes without an owner are limited.
	tp.ps.NoOwnerNVWrite = maxNVWriteNoOwner
	wantRC(t, tp, rcMaxNVWrites, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x1000, 0, []byte("x")))
	// Deleting an index, and TPM_CAP_NV_LIST.
	tp.ps.NoOwnerNVWrite = 0
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1002, nvPerOwnerWrite, 4), secret)
	if got := getCap(t, tp, capNVList, nil); !bytes.Equal(got, append(u32(0x1000), u32(0x1002)...)) {
		t.Errorf("TPM_CAP_NV_LIST %x", got)
	}
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1000, nvPerOwnerWrite, 0), secret)
	if got := getCap(t, tp, capNVList, nil); !bytes.Equal(got, u32(0x1002)) {
		t.Errorf("TPM_CAP_NV_LIST after delete %x", got)
	}
	if got := getCap(t, tp, capNVIndex, u32(0x1002)); !bytes.Equal(got, nvPubInfo(0x1002, nvPerOwnerWrite, 4)) {
		t.Errorf("TPM_CAP_NV_INDEX %x", got)
	}
}

func TestNVOwnerAndAuth(t *testing.T) {
	tp, _ := ownedTPM(t)
	secret := sha([]byte("index"))
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x2000, nvPerOwnerWrite|nvPerOwnerRead, 8), secret); rc != rcSuccess {
		t.Fatalf("DefineSpace: rc %#x", rc)
	}
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x2001, nvPerAuthWrite|nvPerAuthRead, 8), secret); rc != rcSuccess {
		t.Fatalf("DefineSpace: rc %#x", rc)
	}
	if rc := nvDefineOwner(t, tp, sha([]byte("wrong")), nvPubInfo(0x2002, nvPerOwnerWrite, 8), secret); rc != rcAuthFail {
		t.Errorf("DefineSpace wrong owner: rc %#x", rc)
	}
	// nvLocked: now the attributes are enforced.
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(nvIndexLock, 0, 0), make([]byte, 20))
	if !tp.ps.Flags.NVLocked {
		t.Fatal("nvLocked not set")
	}
	wantRC(t, tp, rcAuthConflict, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x2000, 0, []byte("x")))
	wantRC(t, tp, rcAuthConflict, 0, tagRquCommand, ordNVReadValue, nvReadParams(0x2000, 0, 1))
	wantRC(t, tp, rcBadPresence, 0, tagRquCommand, ordNVDefineSpace, nvPubInfo(0x2003, nvPerOwnerWrite, 4), secret)
	if rc, _ := ownerRun(t, tp, testOwner, ordNVWriteValue, nvWriteParams(0x2000, 0, []byte("owner"))); rc != rcSuccess {
		t.Fatalf("owner write: rc %#x", rc)
	}
	if rc, out := ownerRun(t, tp, testOwner, ordNVReadValue, nvReadParams(0x2000, 0, 5)); rc != rcSuccess || string(out[4:]) != "owner" {
		t.Fatalf("owner read: rc %#x %x", rc, out)
	}
	if rc, _ := ownerRun(t, tp, sha([]byte("wrong")), ordNVReadValue, nvReadParams(0x2000, 0, 5)); rc != rcAuthFail {
		t.Errorf("owner read, wrong secret, locked: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, secret, ordNVWriteValueAuth, nvWriteParams(0x2001, 0, []byte("auth"))); rc != rcSuccess {
		t.Fatalf("WriteValueAuth: rc %#x", rc)
	}
	if rc, out := ownerRun(t, tp, secret, ordNVReadValueAuth, nvReadParams(0x2001, 0, 4)); rc != rcSuccess || string(out[4:]) != "auth" {
		t.Fatalf("ReadValueAuth: rc %#x %x", rc, out)
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordNVReadValueAuth, nvReadParams(0x2001, 0, 4)); rc != rcAuthFail {
		t.Errorf("ReadValueAuth wrong secret: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, secret, ordNVReadValueAuth, nvReadParams(0x2000, 0, 4)); rc != rcAuthConflict {
		t.Errorf("ReadValueAuth of an owner index: rc %#x", rc)
	}
	// PCR and locality restrictions.
	info := pcrInfoShort{Select: pcrSelection{Select: []byte{0, 0, 1}}, LocalityAtRelease: locAll}
	info.DigestAtRelease = tp.compositeHash(info.Select)
	w := &writer{}
	(&nvDataPublic{Index: 0x2004, ReadInfo: info, WriteInfo: pcrInfoShort{Select: pcrSelection{Select: make([]byte, 3)}, LocalityAtRelease: 0x02},
		Attributes: nvPerOwnerWrite, DataSize: 4}).marshal(w)
	if rc := nvDefineOwner(t, tp, testOwner, w.b, secret); rc != rcSuccess {
		t.Fatalf("DefineSpace with PCRs: rc %#x", rc)
	}
	mustRun(t, tp, ordNVReadValue, nvReadParams(0x2004, 0, 4))
	if rc, _ := ownerRun(t, tp, testOwner, ordNVWriteValue, nvWriteParams(0x2004, 0, []byte("x"))); rc != rcBadLocality {
		t.Errorf("write at locality 0: rc %#x", rc)
	}
	mustRun(t, tp, ordExtend, u32(16), make([]byte, 20))
	wantRC(t, tp, rcWrongPCRVal, 0, tagRquCommand, ordNVReadValue, nvReadParams(0x2004, 0, 4))
	// OwnerClear removes the owner's indices, not the others.
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x2005, nvPerPPWrite, 4), secret); rc != rcSuccess {
		t.Fatalf("DefineSpace PPWRITE: rc %#x", rc)
	}
	wantRC(t, tp, rcBadPresence, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x2005, 0, []byte("x")))
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerClear, nil); rc != rcSuccess {
		t.Fatalf("OwnerClear: rc %#x", rc)
	}
	if got := tp.nvIndices(); len(got) != 2 || got[0] != 0x2001 {
		t.Errorf("indices after OwnerClear %x", got)
	}
}

// Owner, SRK, a sealed blob and NV indices all survive Save and Load.
func TestOwnershipSealNVRoundTrip(t *testing.T) {
	tp, _ := ownedTPM(t)
	secret := sha([]byte("index"))
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x3000, nvPerOwnerWrite, 6), secret); rc != rcSuccess {
		t.Fatalf("DefineSpace: rc %#x", rc)
	}
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x3001, nvPerAuthWrite|nvPerAuthRead, 4), secret); rc != rcSuccess {
		t.Fatalf("DefineSpace: rc %#x", rc)
	}
	tp.NVChanged()
	if rc, _ := ownerRun(t, tp, testOwner, ordNVWriteValue, nvWriteParams(0x3000, 0, []byte("stored"))); rc != rcSuccess {
		t.Fatalf("WriteValue: rc %#x", rc)
	}
	if !tp.NVChanged() {
		t.Error("WriteValue did not report an NV change")
	}
	ownerRun(t, tp, secret, ordNVWriteValueAuth, nvWriteParams(0x3001, 0, []byte("auth")))
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(nvIndexLock, 0, 0), make([]byte, 20))
	rc, blob := sealRun(t, tp, testSRK, pcrInfoFor(tp, 16), []byte("sealed"))
	if rc != rcSuccess {
		t.Fatalf("Seal: rc %#x", rc)
	}
	state, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	tp2, err := New(Config{State: state})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, tp2, ordStartup, u16(stClear))
	if rc, got := unsealRun(t, tp2, testSRK, testData, blob); rc != rcSuccess || string(got) != "sealed" {
		t.Errorf("Unseal after Load: rc %#x %q", rc, got)
	}
	if got := mustRun(t, tp2, ordNVReadValue, nvReadParams(0x3000, 0, 6)); string(got[4:]) != "stored" {
		t.Errorf("NV after Load %q", got)
	}
	if rc, got := ownerRun(t, tp2, secret, ordNVReadValueAuth, nvReadParams(0x3001, 0, 4)); rc != rcSuccess || string(got[4:]) != "auth" {
		t.Errorf("auth index after Load: rc %#x %q", rc, got)
	}
	if !tp2.ps.Flags.NVLocked {
		t.Error("nvLocked lost across Save/Load")
	}
	wantRC(t, tp2, rcAuthConflict, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x3000, 0, []byte("x")))
	if got := getCap(t, tp2, capNVList, nil); !bytes.Equal(got, append(u32(0x3000), u32(0x3001)...)) {
		t.Errorf("TPM_CAP_NV_LIST after Load %x", got)
	}
}

func TestNVLocksWithoutOwner(t *testing.T) {
	tp := startedTPM(t)
	secret := sha([]byte("index"))
	// Defined before nvLocked: no authorization needed.
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1000, nvPerWriteDefine, 4), secret)
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1001, nvPerWriteSTClear|nvPerPPWrite, 4), secret)
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1002, nvPerGlobalLock|nvPerWriteDefine, 4), secret)
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(0x1003, nvPerReadSTClear|nvPerWriteDefine, 4), secret)
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(nvIndexLock, 0, 0), make([]byte, 20))
	tp.NVChanged()
	tp.stclear.PhysicalPresence = true

	// WRITEDEFINE: a zero-size write locks for good, and is durable.
	mustRun(t, tp, ordNVWriteValue, nvWriteParams(0x1000, 0, []byte("ab")))
	mustRun(t, tp, ordNVWriteValue, nvWriteParams(0x1000, 0, nil))
	if !tp.NVChanged() {
		t.Error("bWriteDefine set without an NV change")
	}
	wantRC(t, tp, rcAreaLocked, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x1000, 0, []byte("cd")))
	if pub := getCap(t, tp, capNVIndex, u32(0x1000)); pub[len(pub)-5] != 1 {
		t.Errorf("TPM_CAP_NV_INDEX bWriteDefine %x", pub)
	}

	// WRITE_STCLEAR: locked until Startup(ST_CLEAR), through SaveState.
	mustRun(t, tp, ordNVWriteValue, nvWriteParams(0x1001, 0, nil))
	wantRC(t, tp, rcAreaLocked, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x1001, 0, []byte("x")))
	if pub := getCap(t, tp, capNVIndex, u32(0x1001)); pub[len(pub)-6] != 1 {
		t.Errorf("TPM_CAP_NV_INDEX bWriteSTClear %x", pub)
	}

	// READ_STCLEAR: a zero-size read locks reading; TPM_DISABLED_CMD.
	mustRun(t, tp, ordNVReadValue, nvReadParams(0x1003, 0, 0))
	wantRC(t, tp, rcDisabledCmd, 0, tagRquCommand, ordNVReadValue, nvReadParams(0x1003, 0, 1))

	// GLOBALLOCK: a zero-size write of TPM_NV_INDEX0 sets bGlobalLock.
	wantRC(t, tp, rcBadIndex, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0, 0, []byte("x")))
	mustRun(t, tp, ordNVWriteValue, nvWriteParams(0x1002, 0, []byte("g")))
	mustRun(t, tp, ordNVWriteValue, nvWriteParams(0, 0, nil))
	if !tp.stclear.BGlobalLock {
		t.Fatal("bGlobalLock not set")
	}
	wantRC(t, tp, rcAreaLocked, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x1002, 0, []byte("g")))

	// SaveState, _TPM_Init, Startup(ST_STATE): the locks stay.
	mustRun(t, tp, ordSaveState)
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	tp2, err := New(Config{State: blob})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, tp2, ordStartup, u16(stState))
	wantRC(t, tp2, rcAreaLocked, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x1001, 0, []byte("x")))
	wantRC(t, tp2, rcAreaLocked, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x1002, 0, []byte("g")))
	wantRC(t, tp2, rcDisabledCmd, 0, tagRquCommand, ordNVReadValue, nvReadParams(0x1003, 0, 1))

	// Startup(ST_CLEAR) clears them; bWriteDefine stays.
	tp2.Reset()
	mustRun(t, tp2, ordStartup, u16(stClear))
	tp2.stclear.PhysicalPresence = true
	mustRun(t, tp2, ordNVWriteValue, nvWriteParams(0x1001, 0, []byte("x")))
	mustRun(t, tp2, ordNVReadValue, nvReadParams(0x1003, 0, 1))
	wantRC(t, tp2, rcAreaLocked, 0, tagRquCommand, ordNVWriteValue, nvWriteParams(0x1000, 0, []byte("cd")))
	mustRun(t, tp2, ordNVWriteValue, nvWriteParams(0x1002, 0, []byte("g")))

	// A successful write unlocks reading.
	mustRun(t, tp2, ordNVReadValue, nvReadParams(0x1003, 0, 0))
	wantRC(t, tp2, rcDisabledCmd, 0, tagRquCommand, ordNVReadValue, nvReadParams(0x1003, 0, 1))
	mustRun(t, tp2, ordNVWriteValue, nvWriteParams(0x1003, 0, []byte("r")))
	mustRun(t, tp2, ordNVReadValue, nvReadParams(0x1003, 0, 1))
}

func TestNVLockedIndexIsNotRedefined(t *testing.T) {
	tp, _ := ownedTPM(t)
	secret := sha([]byte("index"))
	mustRun(t, tp, ordNVDefineSpace, nvPubInfo(nvIndexLock, 0, 0), make([]byte, 20))
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x2000, nvPerWriteSTClear|nvPerAuthWrite, 8), secret); rc != rcSuccess {
		t.Fatalf("DefineSpace: rc %#x", rc)
	}
	tp.nvLocks[0x2000] = nvLock{Write: true}
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x2000, nvPerWriteSTClear|nvPerAuthWrite, 0), secret); rc != rcAreaLocked {
		t.Errorf("deleting a write-locked index: rc %#x", rc)
	}
	tp.nvLocks = map[uint32]nvLock{}
	tp.stclear.BGlobalLock = true
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x2001, nvPerGlobalLock|nvPerAuthWrite, 8), secret); rc != rcSuccess {
		t.Fatalf("DefineSpace: rc %#x", rc)
	}
	if rc := nvDefineOwner(t, tp, testOwner, nvPubInfo(0x2001, nvPerGlobalLock|nvPerAuthWrite, 0), secret); rc != rcAreaLocked {
		t.Errorf("deleting a globally locked index: rc %#x", rc)
	}
}
