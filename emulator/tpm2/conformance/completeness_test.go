package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
)

// Steps for what tpm2-tools' and FAPI's flows need beyond the basics:
// policy tickets, the time and template policies, physical presence.
// They run in TestDifferentialSwtpm with the other steps.

// signer is an ECDSA key both TPMs load as a public-only object, so its
// Name, and every policy digest naming it, are the same on both.
var signer, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func signerPublic() gt.TPMTPublic {
	return gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{SignEncrypt: true, UserWithAuth: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: signer.X.FillBytes(make([]byte, 32))},
			Y: gt.TPM2BECCParameter{Buffer: signer.Y.FillBytes(make([]byte, 32))}}),
	}
}

// sized2 is a TPM2B.
func sized2(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }

// policyDigest reads a session's policyDigest.
func policyDigest(tr transport.TPM, s gt.TPMISHPolicy) string {
	d, err := (gt.PolicyGetDigest{PolicySession: s}).Execute(tr)
	if err != nil {
		return rcString(err)
	}
	return fmt.Sprintf("%x", d.PolicyDigest.Buffer)
}

func completenessSteps() []diffStep {
	return []diffStep{
		{"PolicySigned with a negative expiration gives a ticket PolicyTicket accepts", func(tr transport.TPM) string {
			k, err := (gt.LoadExternal{InPublic: gt.New2B(signerPublic()), Hierarchy: gt.TPMRHOwner}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			defer (gt.FlushContext{FlushHandle: k.ObjectHandle}).Execute(tr)
			s1, close1, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
			if err != nil {
				return rcString(err)
			}
			defer close1()
			var expiration int32 = -300
			ref := []byte("ticket")
			nonce := s1.NonceTPM().Buffer
			d := sha256.New()
			d.Write(nonce)
			d.Write(binary.BigEndian.AppendUint32(nil, uint32(expiration)))
			d.Write(ref)
			r, sv, err := ecdsa.Sign(rand.Reader, signer, d.Sum(nil))
			if err != nil {
				return err.Error()
			}
			sig := gt.TPMTSignature{SigAlg: gt.TPMAlgECDSA, Signature: gt.NewTPMUSignature(gt.TPMAlgECDSA, &gt.TPMSSignatureECC{
				Hash: gt.TPMAlgSHA256, SignatureR: gt.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: gt.TPM2BECCParameter{Buffer: sv.Bytes()}})}
			ps, err := (gt.PolicySigned{AuthObject: gt.NamedHandle{Handle: k.ObjectHandle, Name: k.Name}, PolicySession: s1.Handle(),
				NonceTPM: gt.TPM2BNonce{Buffer: nonce}, PolicyRef: gt.TPM2BNonce{Buffer: ref}, Expiration: expiration, Auth: sig}).Execute(tr)
			if err != nil {
				return "PolicySigned: " + rcString(err)
			}
			out := fmt.Sprintf("timeout %d octets, ticket tag %#x hierarchy %#x; ", len(ps.Timeout.Buffer), uint16(ps.PolicyTicket.Tag), uint32(ps.PolicyTicket.Hierarchy))
			ticket := func(digest []byte) []byte {
				p := sized2(ps.Timeout.Buffer)
				p = append(p, sized2(nil)...)
				p = append(p, sized2(ref)...)
				p = append(p, sized2(k.Name.Buffer)...)
				p = binary.BigEndian.AppendUint16(p, uint16(ps.PolicyTicket.Tag))
				p = binary.BigEndian.AppendUint32(p, uint32(ps.PolicyTicket.Hierarchy))
				return append(p, sized2(digest)...)
			}
			for _, tc := range []struct {
				name   string
				digest []byte
			}{
				{"tampered", append([]byte{^ps.PolicyTicket.Digest.Buffer[0]}, ps.PolicyTicket.Digest.Buffer[1:]...)},
				{"genuine", ps.PolicyTicket.Digest.Buffer},
			} {
				s2, close2, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
				if err != nil {
					return rcString(err)
				}
				rc := sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyTicket), []uint32{uint32(s2.Handle())}, nil, ticket(tc.digest)))
				out += fmt.Sprintf("%s ticket %s, same digest %v; ", tc.name, rc, policyDigest(tr, s2.Handle()) == policyDigest(tr, s1.Handle()))
				close2()
			}
			return out
		}},
		{"PolicyCounterTimer: digest, a true and a false comparison, offset beyond TPMS_TIME_INFO", func(tr transport.TPM) string {
			counterTimer := func(s gt.TPMISHPolicy, operand []byte, offset, op uint16) string {
				p := append(sized2(operand), binary.BigEndian.AppendUint16(nil, offset)...)
				p = binary.BigEndian.AppendUint16(p, op)
				return sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyCounterTimer), []uint32{uint32(s)}, nil, p))
			}
			out := trialDigest(tr, func(s gt.TPMISHPolicy) error {
				counterTimer(s, make([]byte, 8), 8, 0x0007)
				return nil
			})
			s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
			if err != nil {
				return rcString(err)
			}
			defer closer()
			// Clock (offset 8) is at least 0; resetCount (offset 16) is
			// below 0 fails; an operand past the 25 octets is out of range.
			out += " " + counterTimer(s.Handle(), make([]byte, 8), 8, 0x0007)
			out += " " + counterTimer(s.Handle(), make([]byte, 4), 16, 0x0005)
			out += " " + counterTimer(s.Handle(), make([]byte, 8), 20, 0x0000)
			return out + " " + policyDigest(tr, s.Handle())
		}},
		{"PolicyTemplate authorizes Create from its template only", func(tr transport.TPM) string {
			child := signerPublic()
			child.ObjectAttributes = gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true}
			child.Unique = gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{})
			th := sha256.Sum256(gt.Marshal(&child))
			template := func(_ transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
				if rc := sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyTemplate), []uint32{uint32(s)}, nil, sized2(th[:]))); rc != "ok" {
					return fmt.Errorf("PolicyTemplate %s", rc)
				}
				return nil
			}
			policy := trialDigest(tr, func(s gt.TPMISHPolicy) error { return template(tr, s, gt.TPM2BNonce{}) })
			parentTmpl := gt.ECCSRKTemplate
			parentTmpl.ObjectAttributes.UserWithAuth = false
			parentTmpl.AuthPolicy = gt.TPM2BDigest{Buffer: hexBytes(policy)}
			parent, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(parentTmpl)}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			defer (gt.FlushContext{FlushHandle: parent.ObjectHandle}).Execute(tr)
			out := ""
			for _, tmpl := range []gt.TPMTPublic{child, func() gt.TPMTPublic { o := child; o.ObjectAttributes.NoDA = true; return o }()} {
				_, err := (gt.Create{ParentHandle: gt.AuthHandle{Handle: parent.ObjectHandle, Name: parent.Name,
					Auth: gt.Policy(gt.TPMAlgSHA256, 16, template)}, InPublic: gt.New2B(tmpl)}).Execute(tr)
				out += rcString(err) + " "
			}
			return out
		}},
		{"Command audit: list, digest of audited TestParms, algorithm change, counter", func(tr transport.TPM) string {
			var counter0 uint64
			report := func() string {
				rsp, err := tr.Send(rawCommand(uint32(gt.TPMCCGetCommandAuditDigest), []uint32{uint32(gt.TPMRHEndorsement), uint32(gt.TPMRHNull)},
					append(append([]byte{}, emptyPassword...), emptyPassword...), append(sized2(nil), 0x00, 0x10)))
				if err != nil || len(rsp) < 10 {
					return fmt.Sprintf("%v", err)
				}
				if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
					return fmt.Sprintf("rc=0x%03x", rc)
				}
				// handle-less response with sessions: paramSize, TPM2B_ATTEST...
				p := rsp[14:]
				n := int(binary.BigEndian.Uint16(p))
				a, err := gt.Unmarshal[gt.TPMSAttest](p[2 : 2+n])
				if err != nil {
					return err.Error()
				}
				ci, err := a.Attested.CommandAudit()
				if err != nil {
					return err.Error()
				}
				if counter0 == 0 {
					counter0 = ci.AuditCounter
				}
				return fmt.Sprintf("[counter +%d alg %#x digest %x commands %x]", ci.AuditCounter-counter0, uint16(ci.DigestAlg), ci.AuditDigest.Buffer, ci.CommandDigest.Buffer)
			}
			list := func() string {
				r, err := (gt.GetCapability{Capability: gt.TPMCapAuditCommands, PropertyCount: 64}).Execute(tr)
				if err != nil {
					return rcString(err)
				}
				l, _ := r.CapabilityData.Data.AuditCommands()
				return fmt.Sprintf("%v", l.CommandCodes)
			}
			setStatus := func(alg gt.TPMAlgID, set, clear []gt.TPMCC) string {
				p := binary.BigEndian.AppendUint16(nil, uint16(alg))
				for _, l := range [][]gt.TPMCC{set, clear} {
					p = binary.BigEndian.AppendUint32(p, uint32(len(l)))
					for _, cc := range l {
						p = binary.BigEndian.AppendUint32(p, uint32(cc))
					}
				}
				return sendRC(tr, rawCommand(uint32(gt.TPMCCSetCommandCodeAuditStatus), []uint32{uint32(gt.TPMRHOwner)}, emptyPassword, p))
			}
			testParms := func() string {
				// An AES-128-CFB symmetric object's parameters.
				return sendRC(tr, rawCommand(uint32(gt.TPMCCTestParms), nil, nil, []byte{0x00, 0x25, 0x00, 0x06, 0x00, 0x80, 0x00, 0x43}))
			}
			// The default audit algorithm is the TPM's choice (libtpms:
			// SHA-512, the engine: SHA-256, both their context hash): change
			// it twice so that both start from a change.
			out := list() + " " + setStatus(gt.TPMAlgSHA384, nil, nil) + " " + setStatus(gt.TPMAlgSHA256, nil, nil)
			out += " " + setStatus(gt.TPMAlgSHA256, []gt.TPMCC{gt.TPMCCTestParms}, nil) + " " + list()
			out += " " + report()
			out += " " + testParms() + " " + testParms() + " " + report()
			out += " change+list " + setStatus(gt.TPMAlgSHA384, []gt.TPMCC{gt.TPMCCGetRandom}, nil)
			out += " change " + setStatus(gt.TPMAlgSHA384, nil, nil) + " " + report()
			out += " " + testParms() + " " + report()
			out += " back " + setStatus(gt.TPMAlgSHA256, nil, nil) + " clear " + setStatus(gt.TPMAlgNull, nil, []gt.TPMCC{gt.TPMCCTestParms}) + " " + list()
			return out
		}},
		{"PCR_SetAuthValue and PCR_SetAuthPolicy: which PCRs, the group's value, extending with it", func(tr transport.TPM) string {
			out := ""
			for _, i := range []uint32{16, 20, 23} {
				p := append(sized2(make([]byte, 32)), 0, 0x0b)
				p = binary.BigEndian.AppendUint32(p, i)
				out += fmt.Sprintf("policy %d:%s ", i, sendRC(tr, rawCommand(uint32(gt.TPMCCPCRSetAuthPolicy), []uint32{uint32(gt.TPMRHPlatform)}, emptyPassword, p)))
			}
			p := append(sized2(make([]byte, 20)), 0, 0x0b)
			out += "bad size:" + sendRC(tr, rawCommand(uint32(gt.TPMCCPCRSetAuthPolicy), []uint32{uint32(gt.TPMRHPlatform)}, emptyPassword, binary.BigEndian.AppendUint32(p, 20))) + " "
			p = append(sized2(nil), 0, 0x10)
			out += "clear:" + sendRC(tr, rawCommand(uint32(gt.TPMCCPCRSetAuthPolicy), []uint32{uint32(gt.TPMRHPlatform)}, emptyPassword, binary.BigEndian.AppendUint32(p, 20))) + " "
			pw := func(s string) []byte {
				return append([]byte{0x40, 0, 0, 9, 0, 0, 0}, sized2([]byte(s))...)
			}
			extend := func(i uint32, auth []byte) string {
				d := binary.BigEndian.AppendUint32(nil, 1)
				d = append(binary.BigEndian.AppendUint16(d, uint16(gt.TPMAlgSHA256)), make([]byte, 32)...)
				return sendRC(tr, rawCommand(uint32(gt.TPMCCPCRExtend), []uint32{i}, auth, d))
			}
			for _, i := range []uint32{16, 21, 23} {
				out += fmt.Sprintf("value %d:%s ", i, sendRC(tr, rawCommand(uint32(gt.TPMCCPCRSetAuthValue), []uint32{i}, emptyPassword, sized2([]byte("pcrpw")))))
			}
			out += "extend 22 empty:" + extend(22, emptyPassword) + " with pw:" + extend(22, pw("pcrpw")) + " extend 16 empty:" + extend(16, emptyPassword) + " "
			out += "reset:" + sendRC(tr, rawCommand(uint32(gt.TPMCCPCRSetAuthValue), []uint32{20}, pw("pcrpw"), sized2(nil)))
			return out
		}},
		{"TPMA_CC of the commands both implement", func(tr transport.TPM) string {
			r, err := (gt.GetCapability{Capability: gt.TPMCapCommands, PropertyCount: 256}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			l, _ := r.CapabilityData.Data.Command()
			out := ""
			for _, a := range l.CommandAttributes {
				if !bothImplement[gt.TPMCC(a.CommandIndex)] {
					continue
				}
				if nvByDesign[gt.TPMCC(a.CommandIndex)] {
					a.NV = false
				}
				out += fmt.Sprintf("%#x:%+v ", a.CommandIndex, a)
			}
			return out
		}},
		{"PolicyNV signed comparisons between negative operands; the platform deletes an owner index", func(tr transport.TPM) string {
			pub := gt.TPMSNVPublic{NVIndex: 0x01500017, NameAlg: gt.TPMAlgSHA256, DataSize: 1,
				Attributes: gt.TPMANV{OwnerWrite: true, OwnerRead: true, AuthRead: true, AuthWrite: true, NoDA: true, NT: gt.TPMNTOrdinary}}
			if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
				return "define: " + rcString(err)
			}
			rp, err := (gt.NVReadPublic{NVIndex: pub.NVIndex}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			idx := gt.NamedHandle{Handle: pub.NVIndex, Name: rp.NVName}
			if _, err := (gt.NVWrite{AuthHandle: gt.TPMRHOwner, NVIndex: idx, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte{0xFF}}}).Execute(tr); err != nil {
				return "write: " + rcString(err)
			}
			out := ""
			for _, tc := range []struct {
				operand byte
				op      gt.TPMEO
			}{{0xFE, gt.TPMEOSignedGT}, {0xFE, gt.TPMEOSignedLT}, {0x01, gt.TPMEOSignedLT}, {0x80, gt.TPMEOSignedGE}, {0xFF, gt.TPMEOSignedLE}} {
				s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
				if err != nil {
					return rcString(err)
				}
				_, err = (gt.PolicyNV{AuthHandle: gt.AuthHandle{Handle: idx.Handle, Name: idx.Name, Auth: gt.PasswordAuth(nil)}, NVIndex: idx,
					PolicySession: s.Handle(), OperandB: gt.TPM2BOperand{Buffer: []byte{tc.operand}}, Operation: tc.op}).Execute(tr)
				out += fmt.Sprintf("ff %#x %#02x:%s ", uint16(tc.op), tc.operand, rcString(err))
				closer()
			}
			_, err = (gt.NVUndefineSpace{AuthHandle: gt.TPMRHPlatform, NVIndex: idx}).Execute(tr)
			return out + "platform undefines: " + rcString(err)
		}},
		{"RSA_Encrypt and RSA_Decrypt with the null scheme on a key that has none", func(tr transport.TPM) string {
			k, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.TPMTPublic{Type: gt.TPMAlgRSA, NameAlg: gt.TPMAlgSHA256,
				ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Decrypt: true},
				Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{KeyBits: 2048, Scheme: gt.TPMTRSAScheme{Scheme: gt.TPMAlgNull}})})}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			defer (gt.FlushContext{FlushHandle: k.ObjectHandle}).Execute(tr)
			h := gt.AuthHandle{Handle: k.ObjectHandle, Name: k.Name, Auth: gt.PasswordAuth(nil)}
			msg := []byte("padded by the caller")
			enc, err := (gt.RSAEncrypt{KeyHandle: k.ObjectHandle, Message: gt.TPM2BPublicKeyRSA{Buffer: msg}, InScheme: gt.TPMTRSADecrypt{Scheme: gt.TPMAlgNull}}).Execute(tr)
			if err != nil {
				return "encrypt: " + rcString(err)
			}
			dec, err := (gt.RSADecrypt{KeyHandle: h, CipherText: enc.OutData, InScheme: gt.TPMTRSADecrypt{Scheme: gt.TPMAlgNull}}).Execute(tr)
			if err != nil {
				return "decrypt: " + rcString(err)
			}
			big := make([]byte, 256)
			big[0] = 0xFF
			_, err = (gt.RSAEncrypt{KeyHandle: k.ObjectHandle, Message: gt.TPM2BPublicKeyRSA{Buffer: big}, InScheme: gt.TPMTRSADecrypt{Scheme: gt.TPMAlgNull}}).Execute(tr)
			// Above the modulus the reference implementation answers
			// TPM_RC_VALUE, libtpms (through OpenSSL) TPM_RC_FAILURE.
			return fmt.Sprintf("%d octets, decrypts to %x; above the modulus refused: %v", len(enc.OutData.Buffer), dec.Message.Buffer, err != nil)
		}},
		{"ECC_Parameters of P-256, P-384 and an unknown curve", func(tr transport.TPM) string {
			out := ""
			for _, c := range []uint16{0x0003, 0x0004, 0x7777} {
				rsp, err := tr.Send(rawCommand(uint32(gt.TPMCCECCParameters), nil, nil, binary.BigEndian.AppendUint16(nil, c)))
				if err != nil {
					return err.Error()
				}
				out += fmt.Sprintf("%x ", rsp[6:])
			}
			return out
		}},
		{"ClockRateAdjust: each step, an out-of-range one, the endorsement hierarchy", func(tr transport.TPM) string {
			out := ""
			for _, tc := range []struct {
				h      gt.TPMHandle
				adjust int8
			}{{gt.TPMRHOwner, 3}, {gt.TPMRHOwner, -3}, {gt.TPMRHPlatform, 1}, {gt.TPMRHOwner, 0}, {gt.TPMRHOwner, 4}, {gt.TPMRHOwner, -4}, {gt.TPMRHEndorsement, 1}} {
				out += sendRC(tr, rawCommand(uint32(gt.TPMCCClockRateAdjust), []uint32{uint32(tc.h)}, emptyPassword, []byte{byte(tc.adjust)})) + " "
			}
			return out
		}},
		{"PolicyTemplate and PolicyPhysicalPresence digests; templateHash of the wrong size", func(tr transport.TPM) string {
			th := sha256.Sum256([]byte("template"))
			out := trialDigest(tr, func(s gt.TPMISHPolicy) error {
				sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyTemplate), []uint32{uint32(s)}, nil, sized2(th[:])))
				sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyPhysicalPresence), []uint32{uint32(s)}, nil, nil))
				return nil
			})
			out += " " + trialDigest(tr, func(s gt.TPMISHPolicy) error {
				return fmt.Errorf("%s", sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyTemplate), []uint32{uint32(s)}, nil, sized2(th[:20]))))
			})
			return out
		}},
		{"PolicySecret with a negative expiration and no nonceTPM gives a ticket PolicyTicket accepts", func(tr transport.TPM) string {
			s1, close1, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
			if err != nil {
				return rcString(err)
			}
			defer close1()
			ref := []byte("no nonce")
			r, err := (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: gt.PasswordAuth(nil)},
				PolicySession: s1.Handle(), PolicyRef: gt.TPM2BNonce{Buffer: ref}, Expiration: -3600}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			out := fmt.Sprintf("ticket tag 0x%x hierarchy 0x%x timeout %d octets", r.PolicyTicket.Tag, r.PolicyTicket.Hierarchy, len(r.Timeout.Buffer))
			s2, close2, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
			if err != nil {
				return out + " " + rcString(err)
			}
			defer close2()
			p := append(sized2(r.Timeout.Buffer), sized2(nil)...)
			p = append(p, sized2(ref)...)
			p = append(p, sized2(gt.TPMRHOwner.KnownName().Buffer)...)
			p = append(p, gt.Marshal(&r.PolicyTicket)...)
			out += " PolicyTicket:" + sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyTicket), []uint32{uint32(s2.Handle())}, nil, p))
			return out + " digests equal:" + fmt.Sprint(policyDigest(tr, s1.Handle()) == policyDigest(tr, s2.Handle()))
		}},
		{"SetPrimaryPolicy: the policy's size is hashAlg's digest size, empty for TPM_ALG_NULL", func(tr transport.TPM) string {
			set := func(policy []byte, alg gt.TPMAlgID) string {
				p := binary.BigEndian.AppendUint16(sized2(policy), uint16(alg))
				return sendRC(tr, rawCommand(uint32(gt.TPMCCSetPrimaryPolicy), []uint32{uint32(gt.TPMRHOwner)}, emptyPassword, p))
			}
			return fmt.Sprintf("empty sha256:%s 4 octets null:%s 20 octets sha256:%s 32 octets sha256:%s empty null:%s",
				set(nil, gt.TPMAlgSHA256), set(make([]byte, 4), gt.TPMAlgNull), set(make([]byte, 20), gt.TPMAlgSHA256),
				set(make([]byte, 32), gt.TPMAlgSHA256), set(nil, gt.TPMAlgNull))
		}},
		{"EvictControl of a public-only object is TPM_RC_ATTRIBUTES on handle 2", func(tr transport.TPM) string {
			k, err := (gt.LoadExternal{InPublic: gt.New2B(signerPublic()), Hierarchy: gt.TPMRHOwner}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			defer (gt.FlushContext{FlushHandle: k.ObjectHandle}).Execute(tr)
			_, err = (gt.EvictControl{Auth: gt.TPMRHOwner, ObjectHandle: &gt.NamedHandle{Handle: k.ObjectHandle, Name: k.Name},
				PersistentHandle: 0x81000203}).Execute(tr)
			return rcString(err)
		}},
	}
}

func hexBytes(s string) []byte {
	b := make([]byte, len(s)/2)
	fmt.Sscanf(s, "%x", &b)
	return b
}

// bothImplement are the commands whose TPMA_CC the engine and libtpms
// must agree on: every command the engine implements.
var bothImplement = func() map[gt.TPMCC]bool {
	tp, _ := tpm2.New(tpm2.Config{})
	m := map[gt.TPMCC]bool{}
	tr := &engineTPM{t: tp}
	(gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr)
	r, err := (gt.GetCapability{Capability: gt.TPMCapCommands, PropertyCount: 256}).Execute(tr)
	if err != nil {
		panic(err)
	}
	l, _ := r.CapabilityData.Data.Command()
	for _, a := range l.CommandAttributes {
		m[gt.TPMCC(a.CommandIndex)] = true
	}
	return m
}()

// nvByDesign are commands libtpms reports with TPMA_CC.nv that change
// nothing durable in the engine: its PCRs, random generator state,
// self-test results and the audit digest are volatile (the audit counter
// is durable, and WritesNV says when a command moves it). TPMA_CC.nv
// tells a host which commands to ration; the engine's is the true one.
var nvByDesign = map[gt.TPMCC]bool{
	gt.TPMCCPCREvent: true, gt.TPMCCPCRReset: true, gt.TPMCCPCRExtend: true,
	gt.TPMCCSelfTest: true, gt.TPMCCIncrementalSelfTest: true, gt.TPMCCStirRandom: true,
	gt.TPMCCGetCommandAuditDigest: true, gt.TPMCCEventSequenceComplete: true,
}
