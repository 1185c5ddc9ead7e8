package tpm2

import (
	"bytes"
	"crypto/rsa"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

func TestContextSaveLoadSessionAndObject(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	ctx, err := (gt.ContextSave{SaveHandle: srk.ObjectHandle}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.FlushContext{FlushHandle: srk.ObjectHandle}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	ld, err := (gt.ContextLoad{Context: ctx.Context}).Execute(tr)
	if err != nil {
		t.Fatalf("ContextLoad: %v", err)
	}
	rp, err := (gt.ReadPublic{ObjectHandle: ld.LoadedHandle}).Execute(tr)
	if err != nil || !bytes.Equal(rp.Name.Buffer, srk.Name.Buffer) {
		t.Fatalf("reloaded object: %v", err)
	}
	// A tampered blob is refused with TPM_RC_INTEGRITY (parameter 1).
	bad := ctx.Context
	bad.ContextBlob.Buffer = append([]byte{}, bad.ContextBlob.Buffer...)
	bad.ContextBlob.Buffer[len(bad.ContextBlob.Buffer)-1] ^= 1
	_, err = (gt.ContextLoad{Context: bad}).Execute(tr)
	wantRC(t, err, rcIntegrity|0x40|0x100)
	// Session contexts: save, use is refused, load, use works.
	sas, err := (gt.StartAuthSession{TPMKey: gt.TPMRHNull, Bind: gt.TPMRHNull, NonceCaller: gt.TPM2BNonce{Buffer: make([]byte, 16)},
		SessionType: gt.TPMSEPolicy, Symmetric: gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}, AuthHash: gt.TPMAlgSHA256}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	sctx, err := (gt.ContextSave{SaveHandle: sas.SessionHandle}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.PolicyGetDigest{PolicySession: sas.SessionHandle}).Execute(tr); err == nil {
		t.Fatal("saved session still usable")
	}
	if _, err := (gt.ContextLoad{Context: sctx.Context}).Execute(tr); err != nil {
		t.Fatalf("session ContextLoad: %v", err)
	}
	if _, err := (gt.PolicyGetDigest{PolicySession: sas.SessionHandle}).Execute(tr); err != nil {
		t.Fatalf("reloaded session: %v", err)
	}
	// Object slots run out with TPM_RC_OBJECT_MEMORY.
	var last error
	for i := 0; i < loadedObjectsMax+1; i++ {
		_, last = (gt.ContextLoad{Context: ctx.Context}).Execute(tr)
	}
	wantRC(t, last, rcObjectMemory)
	_ = rsa.PublicKey{}
}
