package tpm2

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

func TestMalformedCommandsGetErrors(t *testing.T) {
	tp, _ := newStarted(t)
	for _, c := range seedCommands(t) {
		for cut := 0; cut < len(c); cut++ {
			rsp := tp.Process(c[:cut], 0)
			checkResponse(t, c[:cut], rsp)
			if cut >= 10 && binary.BigEndian.Uint32(rsp[6:]) == 0 && !bytes.Equal(c[:cut], c) && binary.BigEndian.Uint32(c[2:]) != uint32(cut) {
				t.Fatalf("truncated command % x succeeded", c[:cut])
			}
		}
	}
}

func TestUnimplementedCommandCode(t *testing.T) {
	tp, _ := newStarted(t)
	// TPM2_FieldUpgradeStart is not implemented.
	rsp := tp.Process([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x2F}, 0)
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != rcCommandCode {
		t.Fatalf("rc 0x%x, want TPM_RC_COMMAND_CODE", rc)
	}
	if commandTable[0x12F] != nil {
		t.Fatal("FieldUpgradeStart in the table")
	}
}

// TestFastPathsMatchGeneric runs recorded hot-path commands, and every
// truncation and a one-byte extension of each, through the hand-written
// decoders and through go-tpm's decoder. Well-formed commands must get the
// same response code from both; malformed ones must fail on the fast path
// (go-tpm's decoder tolerates some truncations, and reports some with a
// different parameter number or code, so codes are not compared there).
func TestFastPathsMatchGeneric(t *testing.T) {
	encoded := map[string]bool{}
	checkEncoder = func(command string, fast, generic []byte) {
		encoded[command] = true
		if !bytes.Equal(fast, generic) {
			t.Errorf("%s: hand-written encoder gave %x, go-tpm %x", command, fast, generic)
		}
	}
	defer func() { checkEncoder = nil }()
	rec := &recorder{}
	tp, _ := New(Config{})
	rec.t = tp
	_, _ = (gt.Startup{StartupType: gt.TPMSUClear}).Execute(rec)
	ak, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}})})}).Execute(rec)
	if err != nil {
		t.Fatal(err)
	}
	start := len(rec.cmds)
	h := gt.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: gt.PasswordAuth(nil)}
	_, _ = (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 16, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: make([]byte, 32)}, {HashAlg: gt.TPMAlgSHA1, Digest: make([]byte, 20)}}}}).Execute(rec)
	_, _ = (gt.PCRRead{PCRSelectionIn: pcrSel(gt.TPMAlgSHA256, 0, 16, 23)}).Execute(rec)
	_, _ = (gt.Sign{KeyHandle: h, Digest: gt.TPM2BDigest{Buffer: make([]byte, 32)}, Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(rec)
	_, _ = (gt.Quote{SignHandle: h, QualifyingData: gt.TPM2BData{Buffer: []byte("q")}, InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgNull}, PCRSelect: pcrSel(gt.TPMAlgSHA256, 0)}).Execute(rec)
	cs, err := (gt.ContextSave{SaveHandle: ak.ObjectHandle}).Execute(rec)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = (gt.ContextLoad{Context: cs.Context}).Execute(rec)
	_, _ = (gt.FlushContext{FlushHandle: gt.TPMHandle(0x80FFFFFF)}).Execute(rec)
	_, _ = (gt.GetRandom{BytesRequested: 20}).Execute(rec)
	// Each kind of capability: the hand-written ones (TPM properties,
	// handles, PCR allocation) and those left to go-tpm.
	for _, c := range []gt.GetCapability{
		{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTFamilyIndicator), PropertyCount: 64},
		{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTManufacturer), PropertyCount: 1},
		{Capability: gt.TPMCapHandles, Property: 0x80000000, PropertyCount: 8}, // transient
		{Capability: gt.TPMCapHandles, Property: 0x81000000, PropertyCount: 8}, // persistent
		{Capability: gt.TPMCapPCRs, PropertyCount: 1},
		{Capability: gt.TPMCapAlgs, Property: 1, PropertyCount: 16},
		{Capability: gt.TPMCapCommands, Property: uint32(gt.TPMCCNVUndefineSpaceSpecial), PropertyCount: 8},
		{Capability: gt.TPMCapECCCurves, PropertyCount: 4},
	} {
		if _, err := c.Execute(rec); err != nil {
			t.Fatalf("GetCapability %v: %v", c.Capability, err)
		}
	}
	for _, name := range []string{"GetRandom", "PCRRead", "Sign", "Quote", "GetCapability"} {
		if !encoded[name] {
			t.Errorf("%s's hand-written encoder was not compared with go-tpm's", name)
		}
	}
	var inputs [][]byte
	valid := map[string]bool{}
	for _, c := range rec.cmds[start:] {
		valid[string(c)] = true
		if binary.BigEndian.Uint32(c[6:]) == uint32(gt.TPMCCContextSave) {
			continue
		}
		for cut := 10; cut <= len(c); cut++ {
			v := append([]byte{}, c[:cut]...)
			binary.BigEndian.PutUint32(v[2:], uint32(cut))
			inputs = append(inputs, v)
		}
		v := append(append([]byte{}, c...), 0)
		binary.BigEndian.PutUint32(v[2:], uint32(len(v)))
		inputs = append(inputs, v)
	}
	rc := func(generic bool, cmd []byte) uint32 {
		forceGeneric = generic
		defer func() { forceGeneric = false }()
		// Free object slots so ContextLoad inputs do not hit the limit.
		for k := range tp.objects {
			if k != uint32(ak.ObjectHandle) {
				delete(tp.objects, k)
			}
		}
		return binary.BigEndian.Uint32(tp.Process(cmd, 0)[6:])
	}
	for _, in := range inputs {
		f, g := rc(false, in), rc(true, in)
		cc := binary.BigEndian.Uint32(in[6:])
		switch {
		case valid[string(in)] && f != g && commandTable[cc].generic != nil:
			t.Errorf("cc 0x%x: fast path rc 0x%x, generic 0x%x", cc, f, g)
		case !valid[string(in)] && f == 0:
			t.Errorf("cc 0x%x len %d: malformed command accepted by the fast path", cc, len(in))
		}
	}
}

// TestGoTPMDecoderErrorText pins the wording of go-tpm's decoder errors
// that decodeParams reads (the "ran out of data" family) to tell
// TPM_RC_INSUFFICIENT from TPM_RC_VALUE, and checks the parameter each
// format-one response code names. A go-tpm release that words them
// differently fails here rather than silently answering a short
// parameter as a bad value.
func TestGoTPMDecoderErrorText(t *testing.T) {
	ct := reflect.TypeOf(gt.NVWrite{})
	ps := paramFields(ct, 2, true)
	for _, tc := range []struct {
		name string
		c    []byte
		want uint32
	}{
		// data (parameter 1) is a TPM2B promising 3 octets, giving 2.
		{"first parameter short", []byte{0, 3, 1, 2}, rcInsufficient | 0x040 | 1<<8},
		// offset (parameter 2) is a UINT16 cut after one octet.
		{"second parameter short", []byte{0, 1, 9, 0}, rcInsufficient | 0x040 | 2<<8},
		// offset missing altogether.
		{"second parameter missing", []byte{0, 1, 9}, rcInsufficient | 0x040 | 2<<8},
		{"trailing octets", []byte{0, 1, 9, 0, 0, 7}, rcSize},
	} {
		err := decodeParams(tc.c, reflect.New(ct).Elem(), ps)
		if got := rcOf(err); got != tc.want {
			t.Errorf("%s: rc %#x, want %#x (go-tpm said: %v)", tc.name, got, tc.want, err)
		}
	}
}
