package tischeck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// signedQuote builds what CreatePrimary and Quote return for an ECDSA P-256
// key, signed here with Go's crypto over the marshalled TPMS_ATTEST.
func signedQuote(t *testing.T, nonce []byte) (*tpm2.CreatePrimaryResponse, *tpm2.QuoteResponse) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			CurveID: tpm2.TPMECCNistP256,
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
			Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
		}),
	}
	attest := tpm2.New2B(tpm2.TPMSAttest{
		Magic:     tpm2.TPMGeneratedValue,
		Type:      tpm2.TPMSTAttestQuote,
		ExtraData: tpm2.TPM2BData{Buffer: nonce},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
				Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(16, WitnessPCR),
			}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: make([]byte, 32)},
		}),
	})
	digest := sha256.Sum256(attest.Bytes())
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	q := &tpm2.QuoteResponse{
		Quoted: attest,
		Signature: tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgECDSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
				Hash:       tpm2.TPMAlgSHA256,
				SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()},
				SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()},
			}),
		},
	}
	return &tpm2.CreatePrimaryResponse{OutPublic: tpm2.New2B(pub)}, q
}

func TestVerifyQuote(t *testing.T) {
	nonce := []byte("nonce")
	cp, q := signedQuote(t, nonce)
	if err := verifyQuote(cp, q, nonce); err != nil {
		t.Fatalf("a correctly signed quote: %v", err)
	}
	if err := verifyQuote(cp, q, []byte("other")); err == nil || !strings.Contains(err.Error(), "extraData") {
		t.Errorf("a quote over another nonce: %v, want an extraData error", err)
	}
	// A key other than the signer's must not verify.
	other, _ := signedQuote(t, nonce)
	if err := verifyQuote(other, q, nonce); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("a quote checked with another key: %v, want a signature error", err)
	}
}
