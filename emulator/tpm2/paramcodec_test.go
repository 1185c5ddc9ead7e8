package tpm2

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// codecRecorder records what codecCase sends and which commands and
// responses it compared with go-tpm's codec.
type codecRecorder struct {
	recorder
	decoded, responded []string
}

// codecCase sends cmd through the engine and checks the parameter codec
// against go-tpm's command-level codec on what was sent and received:
// decodeParams must give the parameters UnmarshalCommand gives, and
// encodeParams must give back the response parameters go-tpm's client
// read from the wire.

func codecCase[C gt.Command[R, *R], R any](t *testing.T, tp *TPM, rec *codecRecorder, cmd C, sess ...gt.Session) *R {
	t.Helper()
	rsp, err := cmd.Execute(rec, sess...)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	def := commandTable[uint32(cmd.Command())]
	ct, rt := reflect.TypeFor[C](), reflect.TypeFor[R]()

	// The parameter area, as the dispatcher splits it.
	c, err := tp.parseCommand(def, binary.BigEndian.Uint16(last(rec.cmds)), last(rec.cmds)[10:])
	if err != nil {
		t.Fatalf("%T: parse: %v", cmd, err)
	}
	params := append([]byte{}, c.params...)
	if def.params != nil { // else only the row's hand-written decoder reads it
		mine := reflect.New(def.cmdType).Elem()
		if err := decodeParams(params, mine, def.params); err != nil {
			t.Fatalf("%T: decodeParams: %v", cmd, err)
		}
		if again, err := encodeParams(nil, mine, def.params); err != nil || !bytes.Equal(again, params) {
			t.Errorf("%T: parameters decoded and encoded again\n% x (%v)\nsent\n% x", cmd, again, err, params)
		}
		if def.cmdType == ct {
			pre := binary.BigEndian.AppendUint32(nil, def.cc)
			for i := 0; i < def.nHandles; i++ {
				if !def.anon[i] {
					pre = binary.BigEndian.AppendUint32(pre, rhOwner)
				}
			}
			theirs, err := gt.UnmarshalCommand[C](append(pre, params...))
			if err != nil {
				t.Fatalf("%T: go-tpm: %v", cmd, err)
			}
			rec.decoded = append(rec.decoded, ct.Name())
			tv := reflect.ValueOf(theirs)
			for i := def.nHandles; i < ct.NumField(); i++ {
				if !reflect.DeepEqual(mine.Field(i).Interface(), tv.Field(i).Interface()) {
					t.Errorf("%T.%s: decoded %+v, go-tpm %+v", cmd, ct.Field(i).Name, mine.Field(i), tv.Field(i))
				}
			}
		}
	}

	// The response's parameter area and what encodeParams makes of the
	// structure go-tpm's client decoded from it, where the row answers in
	// go-tpm's own response structure.
	if def.rspType != rt {
		return rsp
	}
	rec.responded = append(rec.responded, rt.Name())
	b := rec.rsp[10:]
	first := 0
	for first < rt.NumField() && bytes.Contains([]byte(rt.Field(first).Tag.Get("gotpm")), []byte("handle")) {
		b = b[4:]
		first++
	}
	if binary.BigEndian.Uint16(rec.rsp) == stSessions {
		n := binary.BigEndian.Uint32(b)
		b = b[4 : 4+n]
	}
	got, err := encodeParams(nil, reflect.ValueOf(rsp).Elem(), paramFields(rt, first, false))
	if err != nil {
		t.Fatalf("%T: encodeParams: %v", cmd, err)
	}
	if !bytes.Equal(got, b) {
		t.Errorf("%T: response parameters encoded\n% x\nsent\n% x", cmd, got, b)
	}
	if want, err := gt.MarshalResponse(cmd, rsp); err != nil || !bytes.Equal(got, want[8:]) {
		t.Errorf("%T: response parameters encoded\n% x\ngo-tpm\n% x (%v)", cmd, got, want, err)
	}
	return rsp
}

// TestParamCodecMatchesGoTPM covers each kind of parameter field the
// codec handles (integers, a Boolean, an INT32, TPM2Bs, lists, unions,
// nullable and optional fields, tickets, a context) on commands whose
// rows have no hand-written decoder or encoder.
func TestParamCodecMatchesGoTPM(t *testing.T) {
	tp, _ := newStarted(t)
	rec := &codecRecorder{recorder: recorder{t: tp}}
	pw := gt.PasswordAuth(nil)

	srk := codecCase(t, tp, rec, gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.RSASRKTemplate),
		CreationPCR: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{{Hash: gt.TPMAlgSHA256, PCRSelect: []byte{1, 0, 0}}}}})
	parent := gt.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: pw}
	key := codecCase(t, tp, rec, gt.Create{ParentHandle: parent, InPublic: gt.New2B(gt.ECCSRKTemplate),
		InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{UserAuth: gt.TPM2BAuth{Buffer: []byte("pw")}}}})
	loaded := codecCase(t, tp, rec, gt.Load{ParentHandle: parent, InPrivate: key.OutPrivate, InPublic: key.OutPublic})
	codecCase(t, tp, rec, gt.ReadPublic{ObjectHandle: loaded.ObjectHandle})
	codecCase(t, tp, rec, gt.CertifyCreation{SignHandle: gt.AuthHandle{Handle: gt.TPMRHNull, Auth: pw},
		ObjectHandle: gt.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name},
		CreationHash: key.CreationHash, InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgNull}, CreationTicket: key.CreationTicket})
	rsa := codecCase(t, tp, rec, gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.TPMTPublic{
		Type: gt.TPMAlgRSA, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Decrypt: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{KeyBits: 2048,
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, Scheme: gt.TPMTRSAScheme{Scheme: gt.TPMAlgNull}})})})
	codecCase(t, tp, rec, gt.RSAEncrypt{KeyHandle: rsa.ObjectHandle, Message: gt.TPM2BPublicKeyRSA{Buffer: []byte("secret")},
		InScheme: gt.TPMTRSADecrypt{Scheme: gt.TPMAlgOAEP, Details: gt.NewTPMUAsymScheme(gt.TPMAlgOAEP, &gt.TPMSEncSchemeOAEP{HashAlg: gt.TPMAlgSHA256})},
		Label:    gt.TPM2BData{Buffer: []byte("label\x00")}})
	codecCase(t, tp, rec, gt.Hash{Data: gt.TPM2BMaxBuffer{Buffer: []byte("abc")}, HashAlg: gt.TPMAlgSHA256, Hierarchy: gt.TPMRHOwner})
	codecCase(t, tp, rec, gt.GetCapability{Capability: gt.TPMCapAlgs, Property: 1, PropertyCount: 3})
	codecCase(t, tp, rec, gt.TestParms{Parameters: gt.TPMTPublicParms{Type: gt.TPMAlgECC,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}})}})
	sas := codecCase(t, tp, rec, gt.StartAuthSession{TPMKey: gt.TPMRHNull, Bind: gt.TPMRHNull,
		NonceCaller: gt.TPM2BNonce{Buffer: make([]byte, 16)}, SessionType: gt.TPMSEPolicy,
		Symmetric: gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}, AuthHash: gt.TPMAlgSHA256})
	codecCase(t, tp, rec, gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: pw},
		PolicySession: sas.SessionHandle, NonceTPM: sas.NonceTPM, Expiration: -60})
	codecCase(t, tp, rec, gt.PolicyCommandCode{PolicySession: sas.SessionHandle, Code: gt.TPMCCNVRead})
	pd := codecCase(t, tp, rec, gt.PolicyGetDigest{PolicySession: sas.SessionHandle})
	codecCase(t, tp, rec, gt.PolicyOr{PolicySession: sas.SessionHandle,
		PHashList: gt.TPMLDigest{Digests: []gt.TPM2BDigest{pd.PolicyDigest, {Buffer: make([]byte, 32)}}}})
	codecCase(t, tp, rec, gt.PCREvent{PCRHandle: gt.AuthHandle{Handle: 16, Auth: pw}, EventData: gt.TPM2BEvent{Buffer: []byte("event")}})
	aes := codecCase(t, tp, rec, gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.TPMTPublic{
		Type: gt.TPMAlgSymCipher, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Decrypt: true, SignEncrypt: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgSymCipher, &gt.TPMSSymCipherParms{Sym: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgAES,
			KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(128)), Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}})})})
	codecCase(t, tp, rec, gt.EncryptDecrypt2{KeyHandle: gt.AuthHandle{Handle: aes.ObjectHandle, Name: aes.Name, Auth: pw},
		Message: gt.TPM2BMaxBuffer{Buffer: []byte("sixteen octets!!")}, Decrypt: true, Mode: gt.TPMAlgCFB, IV: gt.TPM2BIV{Buffer: make([]byte, 16)}})
	saved := codecCase(t, tp, rec, gt.ContextSave{SaveHandle: loaded.ObjectHandle})
	codecCase(t, tp, rec, gt.FlushContext{FlushHandle: loaded.ObjectHandle})
	codecCase(t, tp, rec, gt.ContextLoad{Context: saved.Context})
	nv := gt.TPMSNVPublic{NVIndex: 0x01500020, NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{OwnerWrite: true, OwnerRead: true, NT: gt.TPMNTOrdinary, NoDA: true}, DataSize: 8}
	codecCase(t, tp, rec, gt.NVDefineSpace{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: pw}, PublicInfo: gt.New2B(nv)})
	nvName, err := gt.NVName(&nv)
	if err != nil {
		t.Fatal(err)
	}
	codecCase(t, tp, rec, gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: pw},
		NVIndex: gt.NamedHandle{Handle: nv.NVIndex, Name: *nvName}, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte{1, 2, 3}}, Offset: 2})
	codecCase(t, tp, rec, gt.NVRead{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: pw},
		NVIndex: gt.NamedHandle{Handle: nv.NVIndex, Name: *nvName}, Size: 8})
	t.Logf("decoded as go-tpm does: %v", rec.decoded)
	t.Logf("responses encoded as go-tpm does: %v", rec.responded)
	if len(rec.decoded) < 12 || len(rec.responded) < 12 {
		t.Errorf("compared %d commands and %d responses with go-tpm's codec; the table's rows changed under this test", len(rec.decoded), len(rec.responded))
	}
}

func last(b [][]byte) []byte { return b[len(b)-1] }
