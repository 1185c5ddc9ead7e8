package tpm2

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// The sequence fuzzer runs many commands on one TPM, so what one command
// leaves behind (sessions, loaded and persistent objects, NV indices,
// PCRs, policy state) is there for the next, each at a locality the input
// picks: 0–4, and the extended or invalid ones above.

// maxSeqCommands bounds an input's commands, to keep each input quick.
const maxSeqCommands = 32

// seqTPM is a started TPM whose randomness and clock are fixed, so an
// input runs the same way every time: the nonces a recorded session saw
// come again and its HMACs stay valid.
func seqTPM(t testing.TB) *TPM {
	epoch := time.Unix(1_700_000_000, 0)
	tp, err := New(Config{Rand: rand.NewChaCha8([32]byte{'x', 'v', 't', 'p', 'm'}), Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	if rsp := tp.Process(rawCommand(uint32(gt.TPMCCStartup), nil, nil, u16(suClear)), 0); responseCode(rsp) != rcSuccess {
		t.Fatalf("Startup: rc 0x%x", responseCode(rsp))
	}
	return tp
}

// seqRecorder is a transport at a settable locality that writes each
// command it sends as a sequence record: locality, 16-bit length, bytes.
type seqRecorder struct {
	t   *TPM
	loc uint8
	seq []byte
}

func (r *seqRecorder) Send(cmd []byte) ([]byte, error) {
	r.seq = append(r.seq, r.loc)
	r.seq = binary.BigEndian.AppendUint16(r.seq, uint16(len(cmd)))
	r.seq = append(r.seq, cmd...)
	return r.t.Process(cmd, r.loc), nil
}

// seqSeeds records command sequences of real clients: HMAC and salted
// sessions, policies with localities, NV, PCRs at every locality.
func seqSeeds(t testing.TB) [][]byte {
	flows := []func(r *seqRecorder){
		func(r *seqRecorder) { // sealed data under an HMAC session; contexts
			srk, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(r)
			if err != nil {
				return
			}
			parent := gt.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: gt.HMAC(gt.TPMAlgSHA256, 16, gt.Salted(srk.ObjectHandle, *mustContents(srk.OutPublic)))}
			cr, err := (gt.CreateLoaded{ParentHandle: parent,
				InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{UserAuth: gt.TPM2BAuth{Buffer: []byte("pw")}, Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: []byte("secret")})}},
				InPublic: gt.New2BTemplate(&gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
					ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true},
					Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}})})}).Execute(r)
			if err != nil {
				return
			}
			_, _ = (gt.Unseal{ItemHandle: gt.AuthHandle{Handle: cr.ObjectHandle, Name: cr.Name, Auth: gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw")), gt.AESEncryption(128, gt.EncryptOut))}}).Execute(r)
			c, err := (gt.ContextSave{SaveHandle: cr.ObjectHandle}).Execute(r)
			if err == nil {
				_, _ = (gt.FlushContext{FlushHandle: cr.ObjectHandle}).Execute(r)
				_, _ = (gt.ContextLoad{Context: c.Context}).Execute(r)
			}
			_, _ = (gt.EvictControl{Auth: gt.TPMRHOwner, ObjectHandle: &gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}, PersistentHandle: 0x81000100}).Execute(r)
		},
		func(r *seqRecorder) { // PolicyLocality, PolicySecret, PolicyPCR
			s, _, err := gt.PolicySession(r, gt.TPMAlgSHA256, 16)
			if err != nil {
				return
			}
			r.loc = 3
			_, _ = r.Send(rawCommand(uint32(gt.TPMCCPolicyLocality), []uint32{uint32(s.Handle())}, nil, []byte{0x08}))
			r.loc = 0
			_, _ = (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: gt.PasswordAuth(nil)}, PolicySession: s.Handle(), NonceTPM: s.NonceTPM(), Expiration: 10}).Execute(r)
			_, _ = (gt.PolicyPCR{PolicySession: s.Handle(), Pcrs: pcrSel(gt.TPMAlgSHA256, 17, 18)}).Execute(r)
			_, _ = (gt.PolicyGetDigest{PolicySession: s.Handle()}).Execute(r)
		},
		func(r *seqRecorder) { // PCRs 16–23 at every locality
			d := sha256.Sum256([]byte("measure"))
			for loc := uint8(0); loc <= 5; loc++ {
				r.loc = loc
				for _, pcr := range []gt.TPMHandle{16, 17, 20, 22} {
					_, _ = (gt.PCRReset{PCRHandle: gt.AuthHandle{Handle: pcr, Auth: gt.PasswordAuth(nil)}}).Execute(r)
					_, _ = (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: pcr, Auth: gt.PasswordAuth(nil)},
						Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: d[:]}}}}).Execute(r)
				}
			}
			r.loc = 32
			_, _ = (gt.PCRRead{PCRSelectionIn: pcrSel(gt.TPMAlgSHA256, 17, 18, 19, 20, 21, 22)}).Execute(r)
		},
		func(r *seqRecorder) { // a write-once NV index and a counter; hierarchy control
			const idx = 0x01500050
			pub := gt.TPMSNVPublic{NVIndex: idx, NameAlg: gt.TPMAlgSHA256, AuthPolicy: gt.TPM2BDigest{Buffer: policyDigest(func(pc *gt.PolicyCalculator) error {
				return (gt.PolicyNVWritten{WrittenSet: false}).Update(pc)
			})}, Attributes: gt.TPMANV{PolicyWrite: true, AuthRead: true, OwnerRead: true, NT: gt.TPMNTOrdinary}, DataSize: 8}
			if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(pub)}).Execute(r); err != nil {
				return
			}
			for i := 0; i < 2; i++ {
				rp, err := (gt.NVReadPublic{NVIndex: gt.TPMHandle(idx)}).Execute(r)
				if err != nil {
					return
				}
				_, _ = (gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: idx, Name: rp.NVName, Auth: gt.Policy(gt.TPMAlgSHA256, 16,
					func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
						_, err := (gt.PolicyNVWritten{PolicySession: s, WrittenSet: false}).Execute(tpm)
						return err
					})}, NVIndex: gt.NamedHandle{Handle: idx, Name: rp.NVName}, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte("once")}}).Execute(r)
			}
			cnt := gt.TPMSNVPublic{NVIndex: 0x01500051, NameAlg: gt.TPMAlgSHA256, Attributes: gt.TPMANV{OwnerRead: true, OwnerWrite: true, NT: gt.TPMNTCounter}, DataSize: 8}
			_, _ = (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(cnt)}).Execute(r)
			if rp, err := (gt.NVReadPublic{NVIndex: gt.TPMHandle(0x01500051)}).Execute(r); err == nil {
				_, _ = (gt.NVIncrement{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: 0x01500051, Name: rp.NVName}}).Execute(r)
			}
			_, _ = r.Send(rawCommand(uint32(gt.TPMCCHierarchyControl), []uint32{rhPlatform}, passwordAuth(nil), append(u32(rhOwner), 0)))
			_, _ = r.Send(rawCommand(uint32(gt.TPMCCNVRead), []uint32{idx, idx}, passwordAuth(nil), append(u16(4), u16(0)...)))
			_, _ = r.Send(rawCommand(uint32(gt.TPMCCHierarchyControl), []uint32{rhPlatform}, passwordAuth(nil), append(u32(rhOwner), 1)))
		},
	}
	var seeds [][]byte
	for _, flow := range flows {
		r := &seqRecorder{t: seqTPM(t)}
		flow(r)
		seeds = append(seeds, r.seq)
	}
	return seeds
}

func mustContents(p gt.TPM2BPublic) *gt.TPMTPublic {
	c, err := p.Contents()
	if err != nil {
		panic(err)
	}
	return c
}

// drtmPCRs copies PCRs 17–22 of every bank.
func drtmPCRs(tp *TPM) map[gt.TPMAlgID][][]byte {
	out := map[gt.TPMAlgID][][]byte{}
	for alg, vals := range tp.pcr.banks {
		for i := 17; i <= 22; i++ {
			out[alg] = append(out[alg], append([]byte{}, vals[i]...))
		}
	}
	return out
}

// FuzzCommandSequence runs a sequence of commands (each a locality byte, a
// 16-bit length and the command) on one TPM. Every response is well
// formed; a D-RTM PCR (17–22) changes only under a command from a locality
// the PC Client PTP lets reset or extend it; and the state left at the end
// saves and loads.
func FuzzCommandSequence(f *testing.F) {
	for _, s := range seqSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte{4, 0, 10, 0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x7B})
	f.Fuzz(func(t *testing.T, seq []byte) {
		tp := seqTPM(t)
		for n := 0; len(seq) >= 3 && n < maxSeqCommands; n++ {
			loc, size := seq[0], int(binary.BigEndian.Uint16(seq[1:]))
			seq = seq[3:]
			cmd := seq[:min(size, len(seq))]
			seq = seq[len(cmd):]
			before := drtmPCRs(tp)
			rsp := tp.Process(cmd, loc)
			checkResponse(t, cmd, rsp)
			for alg, vals := range drtmPCRs(tp) {
				for j, v := range vals {
					pcr := uint32(17 + j)
					if !bytes.Equal(v, before[alg][j]) && (pcrResetLocalities(pcr)|pcrExtendLocalities(pcr))&localityBit(loc) == 0 {
						t.Fatalf("PCR %d (bank 0x%x) changed by % x at locality %d", pcr, uint16(alg), cmd, loc)
					}
				}
			}
		}
		blob, err := tp.Save()
		if err != nil {
			t.Fatalf("state after the sequence does not save: %v", err)
		}
		if _, err := New(Config{State: blob}); err != nil {
			t.Fatalf("state after the sequence does not load: %v", err)
		}
	})
}
