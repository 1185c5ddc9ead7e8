package tpm12

import (
	"runtime"
	"testing"
)

// Engine-only cost of Process on pre-built commands.
func BenchmarkProcess(b *testing.B) {
	tp := startedTPM(b)
	for name, cmd := range map[string][]byte{
		"Extend":      command(tagRquCommand, ordExtend, u32(10), make([]byte, 20)),
		"PcrRead":     command(tagRquCommand, ordPCRRead, u32(10)),
		"GetRandom32": command(tagRquCommand, ordGetRandom, u32(32)),
		"ReadPubek":   command(tagRquCommand, ordReadPubek, make([]byte, 20)),
	} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tp.Process(cmd, 0)
			}
		})
	}
}

// BenchmarkInstanceHeap reports the live heap one started TPM 1.2
// instance holds (its EK parsed, two OIAP sessions open).
func BenchmarkInstanceHeap(b *testing.B) {
	const n = 16
	blob, err := manufactured()
	if err != nil {
		b.Fatal(err)
	}
	var ms runtime.MemStats
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		tps := make([]*TPM, n)
		for j := range tps {
			tps[j], _ = New(Config{State: blob})
			tps[j].Process(command(tagRquCommand, ordStartup, u16(stClear)), 0)
			tps[j].Process(command(tagRquCommand, ordReadPubek, make([]byte, 20)), 0)
			tps[j].Process(command(tagRquCommand, ordOIAP), 0)
			tps[j].Process(command(tagRquCommand, ordOIAP), 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/n, "B/instance")
		runtime.KeepAlive(tps)
	}
}

// BenchmarkOwnedInstanceHeap reports the live heap of a TPM 1.2 instance
// a guest has put to use: owned (its SRK made), one RSA-2048 signing key
// created and loaded.
func BenchmarkOwnedInstanceHeap(b *testing.B) {
	const n = 4
	var ms runtime.MemStats
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		tps := make([]*TPM, n)
		for j := range tps {
			tps[j], _ = ownedTPM(b)
			rc, blob := createWrapKeyRun(b, tps[j], khSRK, testSRK, keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 2048, nil))
			if rc != rcSuccess {
				b.Fatalf("CreateWrapKey: rc %#x", rc)
			}
			if rc, _ := loadKey2Run(b, tps[j], khSRK, testSRK, blob); rc != rcSuccess {
				b.Fatalf("LoadKey2: rc %#x", rc)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/n, "B/instance")
		runtime.KeepAlive(tps)
	}
}

// Engine-only cost of Seal and Unseal under the SRK, sessions included.
func BenchmarkSealUnseal(b *testing.B) {
	tp, _ := ownedTPM(b)
	_, blob := sealRun(b, tp, testSRK, pcrInfoFor(tp, 16), []byte("secret"))
	b.Run("Seal", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if rc, _ := sealRun(b, tp, testSRK, pcrInfoFor(tp, 16), []byte("secret")); rc != rcSuccess {
				b.Fatalf("rc %#x", rc)
			}
		}
	})
	b.Run("Unseal", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if rc, _ := unsealRun(b, tp, testSRK, testData, blob); rc != rcSuccess {
				b.Fatalf("rc %#x", rc)
			}
		}
	})
}
