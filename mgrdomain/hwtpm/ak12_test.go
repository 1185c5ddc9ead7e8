package hwtpm

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// open12Counted opens s through a counting transport.
func open12Counted(t testing.TB, s *swtpmtest.Swtpm) (*TPM12, *countingTPM) {
	t.Helper()
	o, k := auth12(t)
	c := &countingTPM{tr: s.TPM()}
	tp, err := Open12(c, Config{OwnerAuth: o, SRKAuth: k})
	if err != nil {
		t.Fatalf("Open12: %v", err)
	}
	return tp, c
}

// noneLoaded12 fails if the TPM holds a loaded key or an authorisation
// session (TPM_GetCapability(TPM_CAP_HANDLE)).
func noneLoaded12(t testing.TB, s *swtpmtest.Swtpm, after string) {
	t.Helper()
	for _, rt := range []uint32{rt12Key, rt12Auth} {
		raw, err := tpm.GetCapabilityRaw(&sendRW{tr: s.TPM()}, cap12Handle, rt)
		if err != nil {
			t.Fatalf("TPM_GetCapability(handles, %d): %v", rt, err)
		}
		if len(raw) < 2 || binary.BigEndian.Uint16(raw) != 0 {
			t.Fatalf("after %s: resources of type %d left in the TPM: % x", after, rt, raw)
		}
	}
}

// makeIdentity12 makes an identity key and checks what MakeIdentity
// returns: the key blob holds the public key, and the identityBinding is
// the key's signature over TPM_IDENTITY_CONTENTS (Part 2, 12.5).
func makeIdentity12(t *testing.T, tp *TPM12, label [20]byte) (blob, pub []byte, key *rsa.PublicKey) {
	t.Helper()
	start := time.Now()
	blob, pub, binding, err := tp.MakeIdentity(label)
	if err != nil {
		t.Fatalf("MakeIdentity: %v", err)
	}
	t.Logf("MakeIdentity: %v on swtpm; key blob %d bytes, TPM_PUBKEY %d bytes", time.Since(start), len(blob), len(pub))
	key, err = ParsePubKey12(pub)
	if err != nil {
		t.Fatal(err)
	}
	if key.N.BitLen() != 2048 {
		t.Fatalf("identity key of %d bits", key.N.BitLen())
	}
	if !bytes.Contains(blob, key.N.Bytes()) {
		t.Fatal("the key blob does not hold the public key")
	}
	contents := []byte{1, 1, 0, 0, 0, 0, 0, 0x79}
	contents = append(append(contents, label[:]...), pub...)
	h := sha1.Sum(contents)
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA1, h[:], binding); err != nil {
		t.Fatalf("identityBinding: %v", err)
	}
	return blob, pub, key
}

func TestTPM12IdentityQuote(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp, c := open12Counted(t, s)
	var label [20]byte
	rand.Read(label[:])
	blob, _, key := makeIdentity12(t, tp, label)
	noneLoaded12(t, s, "MakeIdentity")

	var nonce [20]byte
	rand.Read(nonce[:])
	pcrs := []uint{16, 0, 7}
	quote := func() ([]byte, [][]byte) {
		t.Helper()
		before, start := c.n.Load(), time.Now()
		info, sig, vals, err := tp.Quote(blob, nonce, pcrs)
		if err != nil {
			t.Fatalf("Quote: %v", err)
		}
		t.Logf("TPM 1.2 Quote: %d TPM commands, %v on swtpm", c.n.Load()-before, time.Since(start))
		noneLoaded12(t, s, "Quote")
		// A verifier's checks: the signature over TPM_QUOTE_INFO, its
		// fixed fields and nonce, and the composite of the values.
		h := sha1.Sum(info)
		if err := rsa.VerifyPKCS1v15(key, crypto.SHA1, h[:], sig); err != nil {
			t.Fatalf("quote signature: %v", err)
		}
		if len(info) != 48 || !bytes.Equal(info[:8], []byte{1, 1, 0, 0, 'Q', 'U', 'O', 'T'}) || !bytes.Equal(info[28:], nonce[:]) {
			t.Fatalf("TPM_QUOTE_INFO % x", info)
		}
		comp, err := saa.Composite12([]uint{0, 7, 16}, vals)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(info[8:28], comp[:]) {
			t.Fatal("the quoted composite digest is not the PCR values'")
		}
		for i, p := range []uint{0, 7, 16} {
			v, err := tp.PCRRead(uint32(p))
			if err != nil || !bytes.Equal(v[:], vals[i]) {
				t.Fatalf("PCR %d: quoted %x, TPM_PcrRead %x, %v", p, vals[i], v, err)
			}
		}
		return info, vals
	}
	info1, _ := quote()
	if n := c.n.Load(); n == 0 {
		t.Fatal("nothing counted")
	}
	extend12(t, s, 16)
	info2, _ := quote()
	if bytes.Equal(info1[8:28], info2[8:28]) {
		t.Fatal("extending PCR 16 did not change the quoted composite")
	}

	// Refusals before the TPM.
	before := c.n.Load()
	if _, _, _, err := tp.Quote(blob, nonce, []uint{24}); err == nil {
		t.Fatal("Quote of PCR 24 accepted")
	}
	if _, _, _, err := tp.Quote(blob[:len(blob)-1], nonce, pcrs); err == nil {
		t.Fatal("Quote with a truncated key blob accepted")
	}
	if c.n.Load() != before {
		t.Fatal("a refused Quote sent commands")
	}
	// A blob the SRK did not wrap: the TPM refuses it, nothing is left.
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	if _, _, _, err := tp.Quote(bad, nonce, pcrs); err == nil || !strings.Contains(err.Error(), "TPM_LoadKey2") {
		t.Fatalf("Quote with a tampered key blob = %v", err)
	} else {
		t.Logf("refused: %v", err)
	}
	noneLoaded12(t, s, "a refused TPM_LoadKey2")
}

// privacyCA12 is ActivationBlob12, failing the test on error.
func privacyCA12(t *testing.T, ek *rsa.PublicKey, sym []byte, idPub []byte, ekBlob bool) []byte {
	t.Helper()
	enc, err := ActivationBlob12(ek, sym, idPub, ekBlob)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestTPM12ActivateIdentity(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp, c := open12Counted(t, s)
	o, _ := auth12(t)
	ekRaw, err := tp.EKPublic12()
	if err != nil {
		t.Fatal(err)
	}
	if want, err := tpm.OwnerReadPubEK(&sendRW{tr: s.TPM()}, o.TPM12()); err != nil || !bytes.Equal(ekRaw, want) {
		t.Fatalf("EKPublic12 is not TPM_OwnerReadInternalPub's EK: %v", err)
	}
	ek, err := ParsePubKey12(ekRaw)
	if err != nil {
		t.Fatal(err)
	}
	noneLoaded12(t, s, "reading the EK")
	blob, pub, _ := makeIdentity12(t, tp, [20]byte{})
	_, otherPub, _ := makeIdentity12(t, tp, [20]byte{})
	key := make([]byte, 16)
	rand.Read(key)
	sym := SymmetricKey12(key)
	for _, ekBlob := range []bool{false, true} {
		before, start := c.n.Load(), time.Now()
		got, err := tp.ActivateIdentity(blob, privacyCA12(t, ek, sym, pub, ekBlob))
		if err != nil {
			t.Fatalf("ActivateIdentity (TPM_EK_BLOB %v): %v", ekBlob, err)
		}
		t.Logf("ActivateIdentity (TPM_EK_BLOB %v): %d TPM commands, %v on swtpm", ekBlob, c.n.Load()-before, time.Since(start))
		if !bytes.Equal(got, sym) {
			t.Fatalf("ActivateIdentity = % x, want % x", got, sym)
		}
		noneLoaded12(t, s, "ActivateIdentity")
	}
	// The CA certified another identity key: the TPM refuses.
	if _, err := tp.ActivateIdentity(blob, privacyCA12(t, ek, sym, otherPub, true)); !errors.Is(err, ErrCredential) {
		t.Fatalf("ActivateIdentity of a session key meant for another identity key = %v, want ErrCredential", err)
	} else {
		t.Logf("refused: %v", err)
	}
	noneLoaded12(t, s, "a refused ActivateIdentity")
	// Not encrypted to this TPM's EK.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.ActivateIdentity(blob, privacyCA12(t, &other.PublicKey, sym, pub, false)); err == nil {
		t.Fatal("ActivateIdentity decrypted a blob made for another EK")
	}
	noneLoaded12(t, s, "a blob for another EK")
	if _, err := tp.ActivateIdentity(blob, nil); err == nil {
		t.Fatal("ActivateIdentity of an empty blob")
	}
}

func TestTPM12IdentityWrongAuth(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	o, k := auth12(t)
	wrong, _ := ParseAuth("text:wrong")
	tp, err := Open12(s.TPM(), Config{OwnerAuth: wrong, SRKAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := tp.MakeIdentity([20]byte{}); err == nil || !strings.Contains(err.Error(), "owner_auth refused") {
		t.Fatalf("MakeIdentity with a wrong owner_auth = %v", err)
	}
	noneLoaded12(t, s, "a refused MakeIdentity")
	tp, err = Open12(s.TPM(), Config{OwnerAuth: o, SRKAuth: wrong})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := tp.MakeIdentity([20]byte{}); err == nil || !strings.Contains(err.Error(), "srk_auth refused") {
		t.Fatalf("MakeIdentity with a wrong srk_auth = %v", err)
	}
	noneLoaded12(t, s, "a refused MakeIdentity")
}

func BenchmarkTPM12Quote(b *testing.B) {
	s := swtpmtest.StartSwtpm12(b, ownerPass, srkPass)
	tp := open12(b, s, 0)
	blob, _, _, err := tp.MakeIdentity([20]byte{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, _, err := tp.Quote(blob, [20]byte{}, []uint{0, 2, 4, 7}); err != nil {
			b.Fatal(err)
		}
	}
}
