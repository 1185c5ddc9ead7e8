package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// Benchmarks of the same go-tpm client against these targets in one run:
// the engine in-process; vtpmd in this test's process behind its mssim
// and its swtpm raw socket; vtpmd as its own process (what a host runs)
// behind the swtpm raw socket; and Debian's swtpm over its raw TCP
// socket. Each reports the median and 99th-percentile latency (p50-µs,
// p99-µs) next to Go's mean ns/op. Run with e.g.
//
//	go test -run X -bench . -benchtime 1000x ./cmd/vtpmd/
//
// vtpmd-raw shares this process's Go runtime with the client, so each
// round trip wakes two goroutines through one netpoller; vtpmd-proc is
// the figure to set beside swtpm, which runs as its own process too.

type inProc struct{ t *tpm2.TPM }

func (p inProc) Send(cmd []byte) ([]byte, error) { return p.t.Process(cmd, 0), nil }

type target struct {
	name string
	open func(b *testing.B) transport.TPM
}

func targets() []target {
	return []target{
		{"engine", func(b *testing.B) transport.TPM {
			t, err := tpm2.New(tpm2.Config{})
			if err != nil {
				b.Fatal(err)
			}
			tr := inProc{t}
			if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
				b.Fatal(err)
			}
			return tr
		}},
		{"vtpmd-mssim", func(b *testing.B) transport.TPM {
			td := startDaemon(b, b.TempDir())
			tpm := openMssim(b, td.mssim)
			b.Cleanup(func() { tpm.Close() })
			if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tpm); err != nil {
				b.Fatal(err)
			}
			return tpm
		}},
		{"vtpmd-raw", func(b *testing.B) transport.TPM {
			td := startDaemon(b, b.TempDir())
			c, err := net.Dial("tcp", td.swtpm)
			if err != nil {
				b.Fatal(err)
			}
			c.(*net.TCPConn).SetNoDelay(true)
			b.Cleanup(func() { c.Close() })
			tr := swtpmtest.Conn{C: c}
			if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
				b.Fatal(err)
			}
			return tr
		}},
		{"vtpmd-proc", func(b *testing.B) transport.TPM {
			p := swtpmtest.FreePortPair(b)
			cmd := exec.Command(vtpmdBinary(b), "-state", b.TempDir(), "-mssim", "", "-startup",
				"-swtpm", "127.0.0.1:"+itoa(p), "-swtpm-ctrl", "127.0.0.1:"+itoa(p+1))
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			var c net.Conn
			var err error
			for i := 0; i < 100; i++ {
				if c, err = net.Dial("tcp", "127.0.0.1:"+itoa(p)); err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return swtpmtest.Conn{C: c}
		}},
		// Go's TCP connections have TCP_NODELAY on by default.
		{"swtpm", func(b *testing.B) transport.TPM { return swtpmtest.Start(b) }},
	}
}

// measure runs op b.N times and reports the median latency.
func measure(b *testing.B, op func(i int) error) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(lat[(len(lat)*99+99)/100-1].Nanoseconds())/1000, "p99-µs")
}

// vtpmdBinary builds this command once (into vtpmdDir, which TestMain
// removes) for the benchmarks that run it as its own process.
func vtpmdBinary(b *testing.B) string {
	b.Helper()
	vtpmdBuild.Do(func() {
		if vtpmdDir, vtpmdErr = os.MkdirTemp("", "vtpmd-bench"); vtpmdErr != nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(vtpmdDir, "vtpmd"), ".").CombinedOutput(); err != nil {
			vtpmdErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if vtpmdErr != nil {
		b.Fatal(vtpmdErr)
	}
	return filepath.Join(vtpmdDir, "vtpmd")
}

var (
	vtpmdBuild sync.Once
	vtpmdDir   string
	vtpmdErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if vtpmdDir != "" {
		os.RemoveAll(vtpmdDir)
	}
	os.Exit(code)
}

var eccSignTmpl = gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
	ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
	Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
		Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}})}

var rsaSignTmpl = gt.TPMTPublic{Type: gt.TPMAlgRSA, NameAlg: gt.TPMAlgSHA256,
	ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
	Parameters: gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{KeyBits: 2048,
		Scheme: gt.TPMTRSAScheme{Scheme: gt.TPMAlgRSASSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgRSASSA, &gt.TPMSSigSchemeRSASSA{HashAlg: gt.TPMAlgSHA256})}})}

var akTmpl = func() gt.TPMTPublic {
	t := eccSignTmpl
	t.ObjectAttributes.Restricted = true
	return t
}()

func primary(b *testing.B, tr transport.TPM, tmpl gt.TPMTPublic) *gt.CreatePrimaryResponse {
	r, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(tmpl)}).Execute(tr)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func flush(tr transport.TPM, h gt.TPMHandle) {
	_, _ = (gt.FlushContext{FlushHandle: h}).Execute(tr)
}

func BenchmarkTPM(b *testing.B) {
	digest := sha256.Sum256([]byte("bench"))
	for _, tg := range targets() {
		b.Run(tg.name, func(b *testing.B) {
			b.Run("GetRandom32", func(b *testing.B) {
				tr := tg.open(b)
				measure(b, func(int) error {
					_, err := (gt.GetRandom{BytesRequested: 32}).Execute(tr)
					return err
				})
			})
			b.Run("GetCapability", func(b *testing.B) {
				tr := tg.open(b)
				measure(b, func(int) error {
					_, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTManufacturer), PropertyCount: 8}).Execute(tr)
					return err
				})
			})
			b.Run("PCR_Extend", func(b *testing.B) {
				tr := tg.open(b)
				measure(b, func(int) error {
					_, err := (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 16, Auth: gt.PasswordAuth(nil)},
						Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: digest[:]}}}}).Execute(tr)
					return err
				})
			})
			b.Run("PCR_Read", func(b *testing.B) {
				tr := tg.open(b)
				sel := gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(0)}}}
				measure(b, func(int) error {
					_, err := (gt.PCRRead{PCRSelectionIn: sel}).Execute(tr)
					return err
				})
			})
			for _, k := range []struct {
				name string
				tmpl gt.TPMTPublic
			}{{"Sign_ECDSA_P256", eccSignTmpl}, {"Sign_RSA2048", rsaSignTmpl}} {
				b.Run(k.name, func(b *testing.B) {
					tr := tg.open(b)
					key := primary(b, tr, k.tmpl)
					defer flush(tr, key.ObjectHandle)
					h := gt.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: gt.PasswordAuth(nil)}
					measure(b, func(int) error {
						_, err := (gt.Sign{KeyHandle: h, Digest: gt.TPM2BDigest{Buffer: digest[:]},
							Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(tr)
						return err
					})
				})
			}
			b.Run("Quote_ECDSA", func(b *testing.B) {
				tr := tg.open(b)
				ak := primary(b, tr, akTmpl)
				defer flush(tr, ak.ObjectHandle)
				h := gt.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: gt.PasswordAuth(nil)}
				sel := gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(0, 1, 2, 3, 4, 5, 6, 7)}}}
				measure(b, func(int) error {
					_, err := (gt.Quote{SignHandle: h, QualifyingData: gt.TPM2BData{Buffer: []byte("nonce")},
						InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgNull}, PCRSelect: sel}).Execute(tr)
					return err
				})
			})
			// Same template each time: what clients do for an SRK. The
			// engine serves repeats from its derived-key cache.
			for _, k := range []struct {
				name string
				tmpl gt.TPMTPublic
			}{{"CreatePrimary_ECC_P256", gt.ECCSRKTemplate}, {"CreatePrimary_RSA2048", gt.RSASRKTemplate}} {
				b.Run(k.name, func(b *testing.B) {
					tr := tg.open(b)
					measure(b, func(int) error {
						r, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(k.tmpl)}).Execute(tr)
						if err == nil {
							flush(tr, r.ObjectHandle)
						}
						return err
					})
				})
			}
			// A different unique field every time: a full prime search.
			b.Run("CreatePrimary_RSA2048_uncached", func(b *testing.B) {
				tr := tg.open(b)
				measure(b, func(i int) error {
					tmpl := gt.RSASRKTemplate
					u := make([]byte, 8)
					binary.BigEndian.PutUint64(u, uint64(i)+uint64(time.Now().UnixNano()))
					tmpl.Unique = gt.NewTPMUPublicID(gt.TPMAlgRSA, &gt.TPM2BPublicKeyRSA{Buffer: u})
					r, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(tmpl)}).Execute(tr)
					if err == nil {
						flush(tr, r.ObjectHandle)
					}
					return err
				})
			})
			b.Run("Create_RSA2048", func(b *testing.B) {
				tr := tg.open(b)
				srk := primary(b, tr, gt.ECCSRKTemplate)
				parent := gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}
				measure(b, func(int) error {
					_, err := (gt.Create{ParentHandle: parent, InPublic: gt.New2B(rsaSignTmpl)}).Execute(tr)
					return err
				})
			})
			b.Run("ClockRateAdjust", func(b *testing.B) {
				tr := tg.open(b)
				// TPM2_ClockRateAdjust(owner, TPM_CLOCK_NO_CHANGE).
				cmd := rawCommand(0x8002, gt.TPMCCClockRateAdjust, u32(uint32(gt.TPMRHOwner)), pwSessions(1), []byte{0})
				measure(b, func(int) error { return sendOK(tr, cmd) })
			})
			b.Run("PCR_SetAuthValue", func(b *testing.B) {
				tr := tg.open(b)
				// TPM2_PCR_SetAuthValue(PCR 20, empty auth).
				cmd := rawCommand(0x8002, gt.TPMCCPCRSetAuthValue, u32(20), pwSessions(1), []byte{0, 0})
				measure(b, func(int) error { return sendOK(tr, cmd) })
			})
			b.Run("GetCommandAuditDigest_ECDSA", func(b *testing.B) {
				tr := tg.open(b)
				key := primary(b, tr, eccSignTmpl)
				defer flush(tr, key.ObjectHandle)
				// TPM2_GetCommandAuditDigest(endorsement, key, "", TPM_ALG_NULL).
				cmd := rawCommand(0x8002, gt.TPMCCGetCommandAuditDigest, u32(uint32(gt.TPMRHEndorsement)), u32(uint32(key.ObjectHandle)), pwSessions(2),
					[]byte{0, 0, 0, 0x10})
				measure(b, func(int) error { return sendOK(tr, cmd) })
			})
			// Two-phase ECDAA signing: Commit, then Sign with its counter.
			b.Run("Commit_SignECDAA", func(b *testing.B) {
				tr := tg.open(b)
				tmpl := eccSignTmpl
				tmpl.Parameters = gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
					Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDAA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDAA, &gt.TPMSSchemeECDAA{HashAlg: gt.TPMAlgSHA256})}})
				key := primary(b, tr, tmpl)
				defer flush(tr, key.ObjectHandle)
				h := gt.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: gt.PasswordAuth(nil)}
				measure(b, func(int) error {
					cm, err := (gt.Commit{SignHandle: h, P1: gt.New2B(gt.TPMSECCPoint{})}).Execute(tr)
					if err != nil {
						return err
					}
					_, err = (gt.Sign{KeyHandle: h, Digest: gt.TPM2BDigest{Buffer: digest[:]},
						InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgECDAA, Details: gt.NewTPMUSigScheme(gt.TPMAlgECDAA,
							&gt.TPMSSchemeECDAA{HashAlg: gt.TPMAlgSHA256, Count: cm.Counter})},
						Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(tr)
					return err
				})
			})
			// A policy session satisfied by a ticket from
			// PolicySecret(owner) with a negative expiration:
			// StartAuthSession, PolicyTicket, FlushContext.
			b.Run("PolicyTicket_session", func(b *testing.B) {
				tr := tg.open(b)
				start := gt.StartAuthSession{TPMKey: gt.TPMRHNull, Bind: gt.TPMRHNull,
					NonceCaller: gt.TPM2BNonce{Buffer: make([]byte, 16)}, SessionType: gt.TPMSEPolicy,
					Symmetric: gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}, AuthHash: gt.TPMAlgSHA256}
				s, err := start.Execute(tr)
				if err != nil {
					b.Fatal(err)
				}
				ps, err := (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: gt.PasswordAuth(nil)},
					PolicySession: s.SessionHandle, NonceTPM: s.NonceTPM, Expiration: -3600}).Execute(tr)
				if err != nil {
					b.Fatal(err)
				}
				flush(tr, s.SessionHandle)
				// timeout, cpHashA, policyRef, authName (the owner's
				// handle), ticket.
				params := append(gt.Marshal(ps.Timeout), 0, 0, 0, 0)
				params = append(params, gt.Marshal(gt.TPM2BName{Buffer: u32(uint32(gt.TPMRHOwner))})...)
				params = append(params, gt.Marshal(ps.PolicyTicket)...)
				measure(b, func(int) error {
					s, err := start.Execute(tr)
					if err != nil {
						return err
					}
					defer flush(tr, s.SessionHandle)
					return sendOK(tr, rawCommand(0x8001, gt.TPMCCPolicyTicket, u32(uint32(s.SessionHandle)), params))
				})
			})
			b.Run("ContextSave_ContextLoad", func(b *testing.B) {
				tr := tg.open(b)
				srk := primary(b, tr, gt.ECCSRKTemplate)
				measure(b, func(int) error {
					s, err := (gt.ContextSave{SaveHandle: srk.ObjectHandle}).Execute(tr)
					if err != nil {
						return err
					}
					l, err := (gt.ContextLoad{Context: s.Context}).Execute(tr)
					if err != nil {
						return err
					}
					flush(tr, l.LoadedHandle)
					return nil
				})
			})
		})
	}
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// pwSessions is an authorization area of n empty password sessions.
func pwSessions(n int) []byte {
	one := []byte{0x40, 0, 0, 9, 0, 0, 0, 0, 0}
	b := u32(uint32(n * len(one)))
	for range n {
		b = append(b, one...)
	}
	return b
}

// rawCommand frames a command go-tpm has no structure for.
func rawCommand(tag uint16, cc gt.TPMCC, parts ...[]byte) []byte {
	n := 10
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint16(nil, tag)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint32(b, uint32(cc))
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func sendOK(tr transport.TPM, cmd []byte) error {
	rsp, err := tr.Send(cmd)
	if err != nil {
		return err
	}
	if len(rsp) < 10 {
		return fmt.Errorf("response of %d octets", len(rsp))
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		return fmt.Errorf("command 0x%x: TPM_RC 0x%x", binary.BigEndian.Uint32(cmd[6:]), rc)
	}
	return nil
}
