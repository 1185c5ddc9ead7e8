package tpm2

import (
	"encoding/binary"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// TestFastPathsMatchGeneric runs recorded hot-path commands, and every
// truncation and a one-byte extension of each, through the hand-written
// decoders and through go-tpm's decoder. Well-formed commands must get the
// same response code from both; malformed ones must fail on the fast path
// (go-tpm's decoder tolerates some truncations, and reports some with a
// different parameter number or code, so codes are not compared there).
func TestFastPathsMatchGeneric(t *testing.T) {
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
