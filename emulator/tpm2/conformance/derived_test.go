package conformance

import (
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Derived objects (Part 1 §28.2, Part 3 §12.9) and template rules of
// TPM2_Create (Part 1 §27, the reference's CreateChecks/SchemeChecks). A
// derivation parent created with caller-chosen data is the same secret in
// both TPMs, so the keys derived from it must be bit-identical.

// derivationSecret is the derivation parent's sensitive data: the key of
// the KDF that derives its children.
var derivationSecret = bytes.Repeat([]byte{0x5a}, 32)

func xorScheme(kdf gt.TPMAlgID) gt.TPMTKeyedHashScheme {
	return gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgXOR, Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgXOR,
		&gt.TPMSSchemeXOR{HashAlg: gt.TPMAlgSHA256, KDF: gt.TPMIAlgKDF(kdf)})}
}

func keyedHashPublic(a gt.TPMAObject, scheme gt.TPMTKeyedHashScheme) gt.TPMTPublic {
	return gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: scheme})}
}

func sensitiveData(b []byte) gt.TPM2BSensitiveCreate {
	return gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: b})}}
}

// srkFor creates the ECC SRK; done flushes it.
func srkFor(tr transport.TPM) (gt.NamedHandle, func(), error) {
	r, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, func() {}, err
	}
	return gt.NamedHandle{Handle: r.ObjectHandle, Name: r.Name}, func() { flushHandle(tr, r.ObjectHandle) }, nil
}

func flushHandle(tr transport.TPM, h gt.TPMHandle) { (gt.FlushContext{FlushHandle: h}).Execute(tr) }

// createUnder runs TPM2_Create under parent and renders the response code.
func createUnder(tr transport.TPM, parent gt.NamedHandle, pub gt.TPMTPublic, data []byte) string {
	_, err := (gt.Create{ParentHandle: parent, InSensitive: sensitiveData(data), InPublic: gt.New2B(pub)}).Execute(tr)
	return rcString(err)
}

// derivationParent creates and loads, under an SRK, a derivation parent
// holding derivationSecret; done flushes both.
func derivationParent(tr transport.TPM, a gt.TPMAObject) (gt.NamedHandle, func(), error) {
	srk, done, err := srkFor(tr)
	if err != nil {
		return gt.NamedHandle{}, done, err
	}
	pub := keyedHashPublic(a, xorScheme(gt.TPMAlgKDF1SP800108))
	cr, err := (gt.Create{ParentHandle: srk, InSensitive: sensitiveData(derivationSecret), InPublic: gt.New2B(pub)}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, done, err
	}
	lr, err := (gt.Load{ParentHandle: srk, InPrivate: cr.OutPrivate, InPublic: cr.OutPublic}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, done, err
	}
	return gt.NamedHandle{Handle: lr.ObjectHandle, Name: lr.Name}, func() { flushHandle(tr, lr.ObjectHandle); done() }, nil
}

var derivationAttrs = gt.TPMAObject{Restricted: true, Decrypt: true, UserWithAuth: true}

// derive runs TPM2_CreateLoaded under parent with a TPMT_TEMPLATE whose
// unique field is TPMS_DERIVE; it renders the derived public area's
// SHA-256 and the size of outPrivate.
func derive(tr transport.TPM, parent gt.NamedHandle, t gt.TPMTTemplate, sens gt.TPM2BSensitiveCreate) string {
	r, err := (gt.CreateLoaded{ParentHandle: parent, InSensitive: sens, InPublic: gt.New2BTemplate(&t)}).Execute(tr)
	if err != nil {
		return rcString(err)
	}
	defer flushHandle(tr, r.ObjectHandle)
	d := sha256.Sum256(r.OutPublic.Bytes())
	rp, err := (gt.ReadPublic{ObjectHandle: r.ObjectHandle}).Execute(tr)
	if err != nil {
		return rcString(err)
	}
	return fmt.Sprintf("public %x name %x private %d readPublic-same %v", d[:8], r.Name.Buffer[2:10],
		len(r.OutPrivate.Buffer), bytes.Equal(rp.OutPublic.Bytes(), r.OutPublic.Bytes()))
}

func eccTemplate(a gt.TPMAObject, scheme gt.TPMTECCScheme, sym gt.TPMTSymDefObject, label, context string) gt.TPMTTemplate {
	return gt.TPMTTemplate{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256, Scheme: scheme,
			Symmetric: sym, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}}),
		Unique: gt.TPMSDerive{Label: gt.TPM2BLabel{Buffer: []byte(label)}, Context: gt.TPM2BLabel{Buffer: []byte(context)}}}
}

var ecdsaSHA256 = gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}
var noSym = gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}
var aes128CFB = gt.TPMTSymDefObject{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(128)),
	Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}
var derivedSign = gt.TPMAObject{FixedParent: true, SignEncrypt: true, UserWithAuth: true}

func deriveSensitive(label, context string) gt.TPM2BSensitiveCreate {
	return gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{
		Buffer: gt.Marshal(&gt.TPMSDerive{Label: gt.TPM2BLabel{Buffer: []byte(label)}, Context: gt.TPM2BLabel{Buffer: []byte(context)}})})}}
}

// createPrimaryRC runs CreatePrimary under the owner and renders the
// response code, flushing what it made.
func createPrimaryRC(tr transport.TPM, pub gt.TPMTPublic) string {
	r, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(pub)}).Execute(tr)
	if err == nil {
		flushHandle(tr, r.ObjectHandle)
	}
	return rcString(err)
}

func eccPublic(a gt.TPMAObject, scheme gt.TPMTECCScheme) gt.TPMTPublic {
	return gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256, Scheme: scheme,
			Symmetric: noSym, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}})}
}

func rsaPublic(a gt.TPMAObject, scheme gt.TPMTRSAScheme) gt.TPMTPublic {
	return gt.TPMTPublic{Type: gt.TPMAlgRSA, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{KeyBits: 2048, Scheme: scheme, Symmetric: noSym})}
}

// ecdhKeyGenRaw sends TPM2_ECDH_KeyGen and returns zPoint and pubPoint.
func ecdhKeyGenRaw(tr transport.TPM, h gt.TPMHandle) (z, pub gt.TPMSECCPoint, rc string) {
	rsp, err := tr.Send(rawCommand(uint32(gt.TPMCCECDHKeyGen), []uint32{uint32(h)}, nil, nil))
	if err != nil {
		return z, pub, "error: " + err.Error()
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		return z, pub, fmt.Sprintf("rc=0x%03x", rc)
	}
	b := rsp[10:]
	zb, err := gt.Unmarshal[gt.TPM2BECCPoint](b)
	if err != nil {
		return z, pub, "bad zPoint"
	}
	zp, _ := zb.Contents()
	b = b[2+int(binary.BigEndian.Uint16(b)):]
	pb, err := gt.Unmarshal[gt.TPM2BECCPoint](b)
	if err != nil {
		return z, pub, "bad pubPoint"
	}
	pp, _ := pb.Contents()
	return *zp, *pp, "ok"
}

func nvExtendRaw(tr transport.TPM, idx gt.TPMHandle, n int) string {
	data := append(binary.BigEndian.AppendUint16(nil, uint16(n)), make([]byte, n)...)
	return sendRC(tr, rawCommand(uint32(gt.TPMCCNVExtend), []uint32{uint32(idx), uint32(idx)}, emptyPassword, data))
}

func defineNV(tr transport.TPM, idx gt.TPMHandle, nt gt.TPMNT, size uint16) (func(), error) {
	pub := gt.TPMSNVPublic{NVIndex: idx, NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{NT: nt, AuthRead: true, AuthWrite: true, NoDA: true}, DataSize: size}
	_, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(pub)}).Execute(tr)
	if err != nil {
		return func() {}, err
	}
	return func() {
		(gt.NVUndefineSpace{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: idx, Name: nvName(pub)}}).Execute(tr)
	}, nil
}

func nvName(pub gt.TPMSNVPublic) gt.TPM2BName {
	n, _ := gt.NVName(&pub)
	return *n
}

func nvHandle(tr transport.TPM, idx gt.TPMHandle) (gt.NamedHandle, error) {
	r, err := (gt.NVReadPublic{NVIndex: idx}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, err
	}
	return gt.NamedHandle{Handle: idx, Name: r.NVName}, nil
}

// policyNameHash sends TPM2_PolicyNameHash (go-tpm has no structure for
// it).
func policyNameHash(tr transport.TPM, s gt.TPMISHPolicy, nameHash []byte) error {
	rc := sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyNameHash), []uint32{uint32(s)}, nil, sized2(nameHash)))
	if rc == "ok" {
		return nil
	}
	return errors.New(rc)
}

func derivedSteps() []diffStep {
	derived := func(t gt.TPMTTemplate, sens gt.TPM2BSensitiveCreate) func(tr transport.TPM) string {
		return func(tr transport.TPM) string {
			p, done, err := derivationParent(tr, derivationAttrs)
			defer done()
			if err != nil {
				return "parent: " + rcString(err)
			}
			return derive(tr, p, t, sens)
		}
	}
	noSens := gt.TPM2BSensitiveCreate{}
	keyedTemplate := func(a gt.TPMAObject, scheme gt.TPMTKeyedHashScheme) gt.TPMTTemplate {
		return gt.TPMTTemplate{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
			Parameters: gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: scheme}),
			Unique:     gt.TPMSDerive{Label: gt.TPM2BLabel{Buffer: []byte("mac")}, Context: gt.TPM2BLabel{Buffer: []byte("ctx")}}}
	}
	hmacScheme := gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC, Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}
	return []diffStep{
		{"derived ECC signing key (label and context in the template)", derived(eccTemplate(derivedSign, ecdsaSHA256, noSym, "label", "context"), noSens)},
		{"derived ECC signing key (label and context in inSensitive)", derived(eccTemplate(derivedSign, ecdsaSHA256, noSym, "", ""), deriveSensitive("label", "context"))},
		{"derived ECC key: template label overrides inSensitive's", derived(eccTemplate(derivedSign, ecdsaSHA256, noSym, "label", ""), deriveSensitive("other", "context"))},
		{"derived ECC key with empty label and context", derived(eccTemplate(derivedSign, ecdsaSHA256, noSym, "", ""), noSens)},
		{"derived ECC key with a NUL-terminated label", derived(eccTemplate(derivedSign, ecdsaSHA256, noSym, "label\x00", "context"), noSens)},
		{"derived ECC storage key", derived(eccTemplate(gt.TPMAObject{FixedParent: true, Restricted: true, Decrypt: true, UserWithAuth: true},
			gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}, aes128CFB, "storage", "x"), noSens)},
		{"derived HMAC key", derived(keyedTemplate(gt.TPMAObject{FixedParent: true, SignEncrypt: true, UserWithAuth: true}, hmacScheme), noSens)},
		{"derived derivation parent", derived(keyedTemplate(gt.TPMAObject{FixedParent: true, Restricted: true, Decrypt: true, UserWithAuth: true},
			xorScheme(gt.TPMAlgKDF1SP800108)), noSens)},
		{"derived AES key", derived(gt.TPMTTemplate{Type: gt.TPMAlgSymCipher, NameAlg: gt.TPMAlgSHA256,
			ObjectAttributes: gt.TPMAObject{FixedParent: true, Decrypt: true, SignEncrypt: true, UserWithAuth: true},
			Parameters: gt.NewTPMUPublicParms(gt.TPMAlgSymCipher, &gt.TPMSSymCipherParms{Sym: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgAES,
				KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(128)), Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}}),
			Unique: gt.TPMSDerive{Label: gt.TPM2BLabel{Buffer: []byte("aes")}}}, noSens)},
		{"derived key: RSA is not derivable", derived(gt.TPMTTemplate{Type: gt.TPMAlgRSA, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: derivedSign,
			Parameters: gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{KeyBits: 2048, Symmetric: noSym,
				Scheme: gt.TPMTRSAScheme{Scheme: gt.TPMAlgNull}})}, noSens)},
		{"derived key: sensitiveDataOrigin", derived(eccTemplate(gt.TPMAObject{FixedParent: true, SignEncrypt: true, UserWithAuth: true, SensitiveDataOrigin: true},
			ecdsaSHA256, noSym, "l", "c"), noSens)},
		{"derived key: fixedParent clear", derived(eccTemplate(gt.TPMAObject{SignEncrypt: true, UserWithAuth: true}, ecdsaSHA256, noSym, "l", "c"), noSens)},
		{"derived key: fixedTPM unlike its parent", derived(eccTemplate(gt.TPMAObject{FixedTPM: true, FixedParent: true, SignEncrypt: true, UserWithAuth: true},
			ecdsaSHA256, noSym, "l", "c"), noSens)},
		{"derived key: scheme against attributes", derived(eccTemplate(gt.TPMAObject{FixedParent: true, Decrypt: true, UserWithAuth: true}, ecdsaSHA256, noSym, "l", "c"), noSens)},
		{"derived key: template with a TPMU_PUBLIC_ID unique", func(tr transport.TPM) string {
			p, done, err := derivationParent(tr, derivationAttrs)
			defer done()
			if err != nil {
				return "parent: " + rcString(err)
			}
			// A TPMS_ECC_POINT of two 32-octet coordinates does not
			// parse as TPMS_DERIVE's two TPM2B_LABELs.
			_, err = (gt.CreateLoaded{ParentHandle: p, InPublic: gt.New2BTemplate(&extPub)}).Execute(tr)
			return rcString(err)
		}},
		{"derivation parent: Create and Load under it, CreateLoaded under a loaded-external one", func(tr transport.TPM) string {
			p, done, err := derivationParent(tr, derivationAttrs)
			defer done()
			if err != nil {
				return "parent: " + rcString(err)
			}
			out := createUnder(tr, p, eccPublic(gt.TPMAObject{FixedParent: true, SignEncrypt: true, UserWithAuth: true, SensitiveDataOrigin: true}, ecdsaSHA256), nil)
			_, err = (gt.Load{ParentHandle: p, InPrivate: gt.TPM2BPrivate{Buffer: make([]byte, 48)}, InPublic: gt.New2B(extPub)}).Execute(tr)
			out += " " + rcString(err)
			pub := keyedHashPublic(derivationAttrs, xorScheme(gt.TPMAlgKDF1SP800108))
			sens := gt.TPMTSensitive{SensitiveType: gt.TPMAlgKeyedHash, SeedValue: gt.TPM2BDigest{Buffer: make([]byte, 32)},
				Sensitive: gt.NewTPMUSensitiveComposite(gt.TPMAlgKeyedHash, &gt.TPM2BSensitiveData{Buffer: derivationSecret})}
			d := sha256.New()
			d.Write(sens.SeedValue.Buffer)
			d.Write(derivationSecret)
			pub.Unique = gt.NewTPMUPublicID(gt.TPMAlgKeyedHash, &gt.TPM2BDigest{Buffer: d.Sum(nil)})
			le, err := (gt.LoadExternal{InPublic: gt.New2B(pub), InPrivate: gt.New2B(sens), Hierarchy: gt.TPMRHNull}).Execute(tr)
			out += " " + rcString(err)
			if err == nil {
				defer flushHandle(tr, le.ObjectHandle)
				out += " " + derive(tr, gt.NamedHandle{Handle: le.ObjectHandle, Name: le.Name}, eccTemplate(derivedSign, ecdsaSHA256, noSym, "l", "c"), noSens)
			}
			return out
		}},
		{"derivation parent templates", func(tr transport.TPM) string {
			srk, done, err := srkFor(tr)
			defer done()
			if err != nil {
				return rcString(err)
			}
			var out []string
			for _, c := range []struct {
				a    gt.TPMAObject
				kdf  gt.TPMAlgID
				data []byte
			}{
				{derivationAttrs, gt.TPMAlgKDF1SP800108, derivationSecret},
				{derivationAttrs, gt.TPMAlgNull, derivationSecret},
				{derivationAttrs, gt.TPMAlgKDF2, derivationSecret},
				{gt.TPMAObject{Restricted: true, Decrypt: true, UserWithAuth: true, SensitiveDataOrigin: true}, gt.TPMAlgKDF1SP800108, nil},
				{gt.TPMAObject{FixedTPM: true, FixedParent: true, Restricted: true, Decrypt: true, UserWithAuth: true}, gt.TPMAlgKDF1SP800108, derivationSecret},
				{gt.TPMAObject{FixedTPM: true, FixedParent: true, Restricted: true, Decrypt: true, UserWithAuth: true, SensitiveDataOrigin: true}, gt.TPMAlgKDF1SP800108, nil},
				{gt.TPMAObject{Decrypt: true, UserWithAuth: true}, gt.TPMAlgNull, derivationSecret},
			} {
				out = append(out, createUnder(tr, srk, keyedHashPublic(c.a, xorScheme(c.kdf)), c.data))
			}
			return strings.Join(out, " ")
		}},
		// Task: data objects and sensitiveDataOrigin (CreateChecks).
		{"Create: sensitiveDataOrigin against the data supplied", func(tr transport.TPM) string {
			srk, done, err := srkFor(tr)
			defer done()
			if err != nil {
				return rcString(err)
			}
			null := gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}
			aesPub := func(a gt.TPMAObject) gt.TPMTPublic {
				return gt.TPMTPublic{Type: gt.TPMAlgSymCipher, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
					Parameters: gt.NewTPMUPublicParms(gt.TPMAlgSymCipher, &gt.TPMSSymCipherParms{Sym: aes128CFB})}
			}
			var out []string
			for _, c := range []struct {
				pub  gt.TPMTPublic
				data []byte
			}{
				{keyedHashPublic(gt.TPMAObject{UserWithAuth: true}, null), nil},
				{keyedHashPublic(gt.TPMAObject{UserWithAuth: true}, null), []byte("x")},
				{keyedHashPublic(gt.TPMAObject{UserWithAuth: true, SensitiveDataOrigin: true}, null), nil},
				{keyedHashPublic(gt.TPMAObject{UserWithAuth: true, SensitiveDataOrigin: true}, null), []byte("x")},
				{keyedHashPublic(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true}, gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC,
					Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}), nil},
				{keyedHashPublic(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true}, gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC,
					Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}), bytes.Repeat([]byte{1}, 65)},
				{aesPub(gt.TPMAObject{UserWithAuth: true, Decrypt: true, SignEncrypt: true}), nil},
				{aesPub(gt.TPMAObject{UserWithAuth: true, Decrypt: true, SignEncrypt: true}), make([]byte, 16)},
				{aesPub(gt.TPMAObject{FixedTPM: true, FixedParent: true, Restricted: true, UserWithAuth: true, Decrypt: true}), make([]byte, 16)},
				{eccPublic(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true}, ecdsaSHA256), nil},
				{eccPublic(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true, SensitiveDataOrigin: true}, ecdsaSHA256), []byte("x")},
			} {
				out = append(out, createUnder(tr, srk, c.pub, c.data))
			}
			return strings.Join(out, " ")
		}},
		{"CreatePrimary: scheme against sign/decrypt attributes", func(tr transport.TPM) string {
			sd := gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true}
			withSign, withDecrypt, both, restrictedSign := sd, sd, sd, sd
			withSign.SignEncrypt, withDecrypt.Decrypt = true, true
			both.SignEncrypt, both.Decrypt = true, true
			restrictedSign.SignEncrypt, restrictedSign.Restricted = true, true
			ecdh := gt.TPMTECCScheme{Scheme: gt.TPMAlgECDH, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDH, &gt.TPMSKeySchemeECDH{HashAlg: gt.TPMAlgSHA256})}
			rsassa := gt.TPMTRSAScheme{Scheme: gt.TPMAlgRSASSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgRSASSA, &gt.TPMSSigSchemeRSASSA{HashAlg: gt.TPMAlgSHA256})}
			oaep := gt.TPMTRSAScheme{Scheme: gt.TPMAlgOAEP, Details: gt.NewTPMUAsymScheme(gt.TPMAlgOAEP, &gt.TPMSEncSchemeOAEP{HashAlg: gt.TPMAlgSHA256})}
			hmacS := gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC, Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}
			var out []string
			for _, p := range []gt.TPMTPublic{
				eccPublic(withDecrypt, ecdsaSHA256),
				eccPublic(withDecrypt, ecdaaScheme(0)),
				eccPublic(withSign, ecdh),
				eccPublic(both, ecdsaSHA256),
				eccPublic(restrictedSign, gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}),
				eccPublic(withDecrypt, ecdh),
				rsaPublic(withDecrypt, rsassa),
				rsaPublic(withSign, oaep),
				rsaPublic(both, rsassa),
				keyedHashPublic(withSign, xorScheme(gt.TPMAlgKDF1SP800108)),
				keyedHashPublic(withDecrypt, hmacS),
				keyedHashPublic(both, hmacS),
				keyedHashPublic(sd, hmacS),
			} {
				out = append(out, createPrimaryRC(tr, p))
			}
			return strings.Join(out, " ")
		}},
		{"ECDH_KeyGen: zPoint is the full point", func(tr transport.TPM) string {
			k := knownECC(9)
			h, done, err := loadKnownECC(tr, k, decryptOnly, gt.TPMTECCScheme{Scheme: gt.TPMAlgNull})
			defer done()
			if err != nil {
				return rcString(err)
			}
			z, pub, rc := ecdhKeyGenRaw(tr, h.Handle)
			if rc != "ok" {
				return rc
			}
			c := elliptic.P256()
			px, py := new(big.Int).SetBytes(pub.X.Buffer), new(big.Int).SetBytes(pub.Y.Buffer)
			wx, wy := c.ScalarMult(px, py, k.D.Bytes())
			return fmt.Sprintf("z sizes %d/%d, z = d*pub: %v", len(z.X.Buffer), len(z.Y.Buffer),
				bytes.Equal(z.X.Buffer, wx.FillBytes(make([]byte, 32))) && bytes.Equal(z.Y.Buffer, wy.FillBytes(make([]byte, 32))))
		}},
		{"MakeCredential: credential size limit is the nameAlg digest", func(tr transport.TPM) string {
			srk, done, err := srkFor(tr)
			defer done()
			if err != nil {
				return rcString(err)
			}
			var out []string
			for _, n := range []int{32, 33, 64, 65} {
				_, err := (gt.MakeCredential{Handle: srk.Handle, Credential: gt.TPM2BDigest{Buffer: make([]byte, n)},
					ObjectName: srk.Name}).Execute(tr)
				out = append(out, rcString(err))
			}
			return strings.Join(out, " ")
		}},
		{"NV_Certify of the whole index as a digest", func(tr transport.TPM) string {
			const idx = gt.TPMHandle(0x01500033)
			undef, err := defineNV(tr, idx, gt.TPMNTOrdinary, 8)
			defer undef()
			if err != nil {
				return rcString(err)
			}
			nh, err := nvHandle(tr, idx)
			if err != nil {
				return rcString(err)
			}
			data := []byte("12345678")
			if _, err := (gt.NVWrite{AuthHandle: nh, NVIndex: nh, Data: gt.TPM2BMaxNVBuffer{Buffer: data}}).Execute(tr); err != nil {
				return rcString(err)
			}
			if nh, err = nvHandle(tr, idx); err != nil { // the name now has TPMA_NV_WRITTEN
				return rcString(err)
			}
			sk, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(eccPublic(
				gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true}, ecdsaSHA256))}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			defer flushHandle(tr, sk.ObjectHandle)
			var out []string
			for _, signer := range []gt.AuthHandle{{Handle: gt.TPMRHNull, Auth: gt.PasswordAuth(nil)}, {Handle: sk.ObjectHandle, Name: sk.Name, Auth: gt.PasswordAuth(nil)}} {
				r, err := (gt.NVCertify{SignHandle: signer, AuthHandle: gt.AuthHandle{Handle: nh.Handle, Name: nh.Name, Auth: gt.PasswordAuth(nil)},
					NVIndex: nh, InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgNull}}).Execute(tr)
				if err != nil {
					out = append(out, rcString(err))
					continue
				}
				a, err := r.CertifyInfo.Contents()
				if err != nil {
					out = append(out, "bad attest")
					continue
				}
				s := fmt.Sprintf("type %x", uint16(a.Type))
				if d, err := a.Attested.NVDigest(); err == nil {
					want := sha256.Sum256(data)
					s += fmt.Sprintf(" name-ok %v digest %d octets, = H(data) %v", bytes.Equal(d.IndexName.Buffer, nh.Name.Buffer),
						len(d.NVDigest.Buffer), bytes.Equal(d.NVDigest.Buffer, want[:]))
				}
				out = append(out, s)
			}
			return strings.Join(out, "; ")
		}},
		{"NV_Extend data size", func(tr transport.TPM) string {
			const idx = gt.TPMHandle(0x01500034)
			undef, err := defineNV(tr, idx, gt.TPMNTExtend, 32)
			defer undef()
			if err != nil {
				return rcString(err)
			}
			return nvExtendRaw(tr, idx, 1024) + " " + nvExtendRaw(tr, idx, 1025) + " " + nvExtendRaw(tr, idx, 0)
		}},
		{"PolicyNameHash twice, after PolicyCpHash, before PolicyCpHash, in a bound session", func(tr transport.TPM) string {
			nh := make([]byte, 32)
			var out []string
			run := func(opts []gt.AuthOption, f func(s gt.TPMISHPolicy) error) {
				s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16, opts...)
				if err != nil {
					out = append(out, "session: "+rcString(err))
					return
				}
				defer closer()
				out = append(out, rcString(f(s.Handle())))
			}
			nameHash := func(s gt.TPMISHPolicy) error {
				return policyNameHash(tr, s, nh)
			}
			cpHash := func(s gt.TPMISHPolicy) error {
				_, err := (gt.PolicyCPHash{PolicySession: s, CPHashA: gt.TPM2BDigest{Buffer: nh}}).Execute(tr)
				return err
			}
			run(nil, func(s gt.TPMISHPolicy) error {
				if err := nameHash(s); err != nil {
					return err
				}
				return nameHash(s)
			})
			run(nil, func(s gt.TPMISHPolicy) error {
				if err := cpHash(s); err != nil {
					return err
				}
				return nameHash(s)
			})
			run(nil, func(s gt.TPMISHPolicy) error {
				if err := nameHash(s); err != nil {
					return err
				}
				return cpHash(s)
			})
			run(nil, func(s gt.TPMISHPolicy) error {
				return policyNameHash(tr, s, nh[:20])
			})
			run([]gt.AuthOption{gt.Bound(gt.TPMRHOwner, gt.TPM2BName{Buffer: binary.BigEndian.AppendUint32(nil, uint32(gt.TPMRHOwner))}, nil)}, nameHash)
			return strings.Join(out, " ")
		}},
		{"Clear resets Clock, the counters and the DA parameters", func(tr transport.TPM) string {
			var out []string
			da := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 7), 20), 30)
			out = append(out, sendRC(tr, rawCommand(uint32(gt.TPMCCDictionaryAttackParameters), []uint32{uint32(gt.TPMRHLockout)}, emptyPassword, da)))
			out = append(out, sendRC(tr, rawCommand(uint32(gt.TPMCCClockSet), []uint32{uint32(gt.TPMRHOwner)}, emptyPassword,
				binary.BigEndian.AppendUint64(nil, 1<<40))))
			pcr := func() uint32 {
				r, err := (gt.PCRRead{PCRSelectionIn: sel(gt.TPMAlgSHA256, 0)}).Execute(tr)
				if err != nil {
					return 0
				}
				return r.PCRUpdateCounter
			}
			before := pcr()
			_, err := (gt.Clear{AuthHandle: gt.TPMRHLockout}).Execute(tr)
			out = append(out, rcString(err))
			out = append(out, fmt.Sprintf("pcrUpdateCounter +%d", pcr()-before))
			c, err := (gt.ReadClock{}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			ci := c.CurrentTime.ClockInfo
			out = append(out, fmt.Sprintf("clock<10s %v reset %d restart %d safe %v", ci.Clock < 10000, ci.ResetCount, ci.RestartCount, ci.Safe))
			cap, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTMaxAuthFail), PropertyCount: 3}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			props, _ := cap.CapabilityData.Data.TPMProperties()
			for _, p := range props.TPMProperty {
				out = append(out, fmt.Sprintf("%x=%d", uint32(p.Property), p.Value))
			}
			return strings.Join(out, " ")
		}},
	}
}
