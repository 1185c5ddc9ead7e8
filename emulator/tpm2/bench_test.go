package tpm2

import (
	"runtime"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// Engine-only cost of Process on pre-built commands (no client
// marshalling): the server-side share of the cmd/vtpmd benchmarks.
func BenchmarkProcess(b *testing.B) {
	rec := &recorder{}
	tp, _ := New(Config{})
	rec.t = tp
	_, _ = (gt.Startup{StartupType: gt.TPMSUClear}).Execute(rec)
	_, _ = (gt.GetRandom{BytesRequested: 32}).Execute(rec)
	_, _ = (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 16, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: make([]byte, 32)}}}}).Execute(rec)
	_, _ = (gt.PCRRead{PCRSelectionIn: pcrSel(gt.TPMAlgSHA256, 0)}).Execute(rec)
	_, _ = (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTManufacturer), PropertyCount: 8}).Execute(rec)
	cmds := map[string][]byte{"GetRandom32": rec.cmds[1], "PCR_Extend": rec.cmds[2], "PCR_Read": rec.cmds[3], "GetCapability": rec.cmds[4]}
	sign := func(name string, tmpl gt.TPMTPublic) {
		k, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(tmpl)}).Execute(rec)
		if err != nil {
			b.Fatal(err)
		}
		h := gt.AuthHandle{Handle: k.ObjectHandle, Name: k.Name, Auth: gt.PasswordAuth(nil)}
		if _, err := (gt.Sign{KeyHandle: h, Digest: gt.TPM2BDigest{Buffer: make([]byte, 32)},
			Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(rec); err != nil {
			b.Fatal(err)
		}
		cmds["Sign_"+name] = rec.cmds[len(rec.cmds)-1]
		if _, err := (gt.Quote{SignHandle: h, QualifyingData: gt.TPM2BData{Buffer: []byte("nonce")},
			InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgNull}, PCRSelect: pcrSel(gt.TPMAlgSHA256, 0, 1, 2, 3, 4, 5, 6, 7)}).Execute(rec); err != nil {
			b.Fatal(err)
		}
		cmds["Quote_"+name] = rec.cmds[len(rec.cmds)-1]
	}
	attrs := gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true}
	sign("ECDSA", gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}})})
	sign("RSA", gt.TPMTPublic{Type: gt.TPMAlgRSA, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{KeyBits: 2048,
			Scheme: gt.TPMTRSAScheme{Scheme: gt.TPMAlgRSASSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgRSASSA, &gt.TPMSSigSchemeRSASSA{HashAlg: gt.TPMAlgSHA256})}})})
	for name, cmd := range cmds {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tp.Process(cmd, 0)
			}
		})
	}
}

// BenchmarkInstanceHeap reports the live heap one TPM instance holds after
// Startup, an ECC SRK, an RSA-2048 EK and a loaded ECC signing key (each
// guest carries one such instance).
func BenchmarkInstanceHeap(b *testing.B) {
	const n = 16
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	keep := make([]*TPM, 0, n)
	for i := 0; i < n; i++ {
		tp, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		tr := engineTransport{tp}
		if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
			b.Fatal(err)
		}
		srk, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHEndorsement, InPublic: gt.New2B(gt.RSAEKTemplate)}).Execute(tr); err != nil {
			b.Fatal(err)
		}
		if _, err := (gt.CreateLoaded{ParentHandle: gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name},
			InPublic: gt.New2BTemplate(&gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
				ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
				Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256, Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}})})}).Execute(tr); err != nil {
			b.Fatal(err)
		}
		keep = append(keep, tp)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc-before)/n, "heap-B/instance")
	runtime.KeepAlive(keep)
	for i := 0; i < b.N; i++ {
	}
}
