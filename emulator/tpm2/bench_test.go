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
	cmds := map[string][]byte{"GetRandom32": rec.cmds[1], "PCR_Extend": rec.cmds[2], "PCR_Read": rec.cmds[3]}
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
