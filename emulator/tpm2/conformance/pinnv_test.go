package conformance

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Steps for PIN-pass and PIN-fail indices (Part 2 §13.2 TPM_NT_PIN_PASS,
// TPM_NT_PIN_FAIL; their authorization, Part 1 §37.4.5) and for the
// platform commands TPM2_PP_Commands and TPM2_SetAlgorithmSet (Part 3
// §26). They run in TestDifferentialSwtpm with the other steps.

// pinPub is the public area of an owner-defined PIN index; the
// attributes every case shares are the read and write authorizations.
func pinPub(h gt.TPMHandle, nt gt.TPMNT, a gt.TPMANV) gt.TPMSNVPublic {
	a.NT = nt
	a.OwnerWrite, a.OwnerRead, a.AuthRead = true, true, true
	return gt.TPMSNVPublic{NVIndex: h, NameAlg: gt.TPMAlgSHA256, Attributes: a, DataSize: 8}
}

// pinIndex is a defined index with its Name, for authorizing with it.
type pinIndex struct {
	h    gt.TPMHandle
	name gt.TPM2BName
}

func definePin(tr transport.TPM, pub gt.TPMSNVPublic, auth string) (*pinIndex, func(), error) {
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, Auth: gt.TPM2BAuth{Buffer: []byte(auth)},
		PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
		return nil, nil, err
	}
	p := &pinIndex{h: pub.NVIndex}
	done := func() {
		p.refresh(tr)
		(gt.NVUndefineSpace{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name}}).Execute(tr)
	}
	if err := p.refresh(tr); err != nil {
		done()
		return nil, nil, err
	}
	return p, done, nil
}

// refresh reads the index's Name, which changes when it is first
// written (TPMA_NV_WRITTEN is part of it).
func (p *pinIndex) refresh(tr transport.TPM) error {
	rp, err := (gt.NVReadPublic{NVIndex: p.h}).Execute(tr)
	if err != nil {
		return err
	}
	p.name = rp.NVName
	return nil
}

// set writes pinCount and pinLimit with owner authorization.
func (p *pinIndex) set(tr transport.TPM, count, limit uint32) string {
	d := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, count), limit)
	_, err := (gt.NVWrite{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name},
		Data: gt.TPM2BMaxNVBuffer{Buffer: d}}).Execute(tr)
	if err == nil {
		err = p.refresh(tr)
	}
	return rcString(err)
}

// params reads pinCount/pinLimit with owner authorization, so the read
// itself counts nothing.
func (p *pinIndex) params(tr transport.TPM) string {
	r, err := (gt.NVRead{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name}, Size: 8}).Execute(tr)
	if err != nil {
		return rcString(err)
	}
	return fmt.Sprintf("%x", r.Data.Buffer)
}

// readWith reads the index authorized by the index itself.
func (p *pinIndex) readWith(tr transport.TPM, s gt.Session) string {
	_, err := (gt.NVRead{AuthHandle: gt.AuthHandle{Handle: p.h, Name: p.name, Auth: s},
		NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name}, Size: 8}).Execute(tr)
	return rcString(err)
}

// lockoutCounter reads TPM_PT_LOCKOUT_COUNTER.
func lockoutCounter(tr transport.TPM) string {
	r, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTLockoutCounter), PropertyCount: 1}).Execute(tr)
	if err != nil {
		return rcString(err)
	}
	p, err := r.CapabilityData.Data.TPMProperties()
	if err != nil || len(p.TPMProperty) == 0 {
		return "no property"
	}
	return fmt.Sprint(p.TPMProperty[0].Value)
}

// daReset clears the DA failure count (lockoutAuth is empty in both).
func daReset(tr transport.TPM) {
	sendRC(tr, rawCommand(uint32(gt.TPMCCDictionaryAttackLockReset), []uint32{uint32(gt.TPMRHLockout)}, emptyPassword, nil))
}

// ppCommands sends TPM2_PP_Commands with platform authorization.
func ppCommands(tr transport.TPM, set, clear []uint32) string {
	p := binary.BigEndian.AppendUint32(nil, uint32(len(set)))
	for _, cc := range set {
		p = binary.BigEndian.AppendUint32(p, cc)
	}
	p = binary.BigEndian.AppendUint32(p, uint32(len(clear)))
	for _, cc := range clear {
		p = binary.BigEndian.AppendUint32(p, cc)
	}
	return sendRC(tr, rawCommand(uint32(gt.TPMCCPPCommands), []uint32{uint32(gt.TPMRHPlatform)}, emptyPassword, p))
}

// ppList reads GetCapability(TPM_CAP_PP_COMMANDS) from property on.
func ppList(tr transport.TPM, property, count uint32) string {
	r, err := (gt.GetCapability{Capability: gt.TPMCapPPCommands, Property: property, PropertyCount: count}).Execute(tr)
	if err != nil {
		return rcString(err)
	}
	l, err := r.CapabilityData.Data.PPCommands()
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("more=%v %x", r.MoreData, l.CommandCodes)
}

func pinNVSteps() []diffStep {
	return []diffStep{
		{"PIN index NV_DefineSpace attribute rules", func(tr transport.TPM) string {
			out := ""
			for _, c := range []struct {
				nt   gt.TPMNT
				a    gt.TPMANV
				size uint16
			}{
				{gt.TPMNTPinPass, gt.TPMANV{}, 8},
				{gt.TPMNTPinPass, gt.TPMANV{}, 4},
				{gt.TPMNTPinPass, gt.TPMANV{AuthWrite: true}, 8},
				{gt.TPMNTPinPass, gt.TPMANV{GlobalLock: true}, 8},
				{gt.TPMNTPinPass, gt.TPMANV{WriteDefine: true}, 8},
				{gt.TPMNTPinPass, gt.TPMANV{ClearSTClear: true}, 8},
				{gt.TPMNTPinPass, gt.TPMANV{WriteSTClear: true, ReadSTClear: true, NoDA: true}, 8},
				{gt.TPMNTPinPass, gt.TPMANV{PolicyDelete: true}, 8},
				{gt.TPMNTPinFail, gt.TPMANV{}, 8},
				{gt.TPMNTPinFail, gt.TPMANV{}, 4},
				{gt.TPMNTPinFail, gt.TPMANV{NoDA: true}, 8},
				{gt.TPMNTPinFail, gt.TPMANV{NoDA: true, AuthWrite: true}, 8},
				{gt.TPMNTPinFail, gt.TPMANV{NoDA: true, WriteDefine: true}, 8},
				{gt.TPMNTPinFail, gt.TPMANV{NoDA: true, Orderly: true}, 8},
				{gt.TPMNTPinFail, gt.TPMANV{NoDA: true, Written: true}, 8},
				{3, gt.TPMANV{}, 8},
				{gt.TPMNTCounter, gt.TPMANV{ClearSTClear: true}, 8},
				{gt.TPMNTOrdinary, gt.TPMANV{ClearSTClear: true, WriteDefine: true}, 8},
				{gt.TPMNTPinPass, gt.TPMANV{PlatformCreate: true}, 8},
				{gt.TPMNTOrdinary, gt.TPMANV{WriteAll: true}, 2048},
			} {
				pub := pinPub(0x01500040, c.nt, c.a)
				pub.DataSize = c.size
				_, done, err := definePin(tr, pub, "pin")
				out += rcString(err) + " "
				if err == nil {
					done()
				}
			}
			return out
		}},
		{"PIN index written and read with owner authorization", func(tr transport.TPM) string {
			p, done, err := definePin(tr, pinPub(0x01500041, gt.TPMNTPinPass, gt.TPMANV{}), "pin")
			if err != nil {
				return rcString(err)
			}
			defer done()
			out := p.params(tr) + " " + p.set(tr, 1, 5) + " " + p.params(tr) + " "
			// A partial write and one beyond the index.
			_, err = (gt.NVWrite{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name},
				Data: gt.TPM2BMaxNVBuffer{Buffer: []byte{0, 0, 0, 9}}, Offset: 4}).Execute(tr)
			out += rcString(err) + " " + p.params(tr) + " "
			_, err = (gt.NVWrite{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name},
				Data: gt.TPM2BMaxNVBuffer{Buffer: make([]byte, 8)}, Offset: 4}).Execute(tr)
			out += rcString(err) + " "
			// The index's own authValue never writes a PIN index.
			_, err = (gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: p.h, Name: p.name, Auth: gt.PasswordAuth([]byte("pin"))},
				NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name}, Data: gt.TPM2BMaxNVBuffer{Buffer: make([]byte, 8)}}).Execute(tr)
			out += rcString(err) + " "
			rp, err := (gt.NVReadPublic{NVIndex: p.h}).Execute(tr)
			if err != nil {
				return out + rcString(err)
			}
			pub, _ := rp.NVPublic.Contents()
			return out + fmt.Sprintf("%x %+v", rp.NVName.Buffer, pub.Attributes)
		}},
		{"NV_Write on a counter index", func(tr transport.TPM) string {
			p, done, err := definePin(tr, pinPub(0x01500047, gt.TPMNTCounter, gt.TPMANV{}), "")
			if err != nil {
				return rcString(err)
			}
			defer done()
			return p.set(tr, 0, 1)
		}},
		{"PIN_PASS counts successful authorizations up to pinLimit", func(tr transport.TPM) string {
			p, done, err := definePin(tr, pinPub(0x01500042, gt.TPMNTPinPass, gt.TPMANV{}), "pin")
			if err != nil {
				return rcString(err)
			}
			defer done()
			defer daReset(tr)
			pw := gt.PasswordAuth([]byte("pin"))
			// Not written yet: the authValue is not available.
			out := p.readWith(tr, pw) + " " + p.set(tr, 0, 3) + " "
			for i := 0; i < 4; i++ {
				out += p.readWith(tr, pw) + ":" + p.params(tr) + " "
			}
			// Below the limit again; a wrong password is DA-protected here
			// (no TPMA_NV_NO_DA) and does not count.
			out += p.set(tr, 1, 3) + " " + lockoutCounter(tr) + " "
			out += p.readWith(tr, gt.PasswordAuth([]byte("bad"))) + ":" + p.params(tr) + " " + lockoutCounter(tr) + " "
			// PolicySecret with the index counts as a use.
			s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
			if err != nil {
				return out + rcString(err)
			}
			defer closer()
			_, err = (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: p.h, Name: p.name, Auth: pw},
				PolicySession: s.Handle(), NonceTPM: s.NonceTPM()}).Execute(tr)
			out += rcString(err) + ":" + p.params(tr) + " "
			// An HMAC session, unbound, counts; pinLimit 0 refuses at once.
			out += p.readWith(tr, gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pin")))) + ":" + p.params(tr) + " "
			out += p.set(tr, 0, 0) + " " + p.readWith(tr, pw) + ":" + p.params(tr)
			return out
		}},
		{"PIN_PASS through a session bound to the index", func(tr transport.TPM) string {
			p, done, err := definePin(tr, pinPub(0x01500043, gt.TPMNTPinPass, gt.TPMANV{NoDA: true}), "pin")
			if err != nil {
				return rcString(err)
			}
			defer done()
			out := p.set(tr, 0, 5) + " "
			out += p.readWith(tr, gt.HMAC(gt.TPMAlgSHA256, 16, gt.Bound(p.h, p.name, []byte("pin")), gt.Auth([]byte("pin")))) + ":" + p.params(tr)
			return out
		}},
		{"PIN_FAIL counts failures, success resets, DA untouched", func(tr transport.TPM) string {
			p, done, err := definePin(tr, pinPub(0x01500044, gt.TPMNTPinFail, gt.TPMANV{NoDA: true}), "pin")
			if err != nil {
				return rcString(err)
			}
			defer done()
			defer daReset(tr)
			pw, bad := gt.PasswordAuth([]byte("pin")), gt.PasswordAuth([]byte("bad"))
			out := p.readWith(tr, bad) + " " + p.set(tr, 0, 2) + " " + lockoutCounter(tr) + " "
			out += p.readWith(tr, bad) + ":" + p.params(tr) + " "
			out += p.readWith(tr, pw) + ":" + p.params(tr) + " "
			for i := 0; i < 3; i++ {
				out += p.readWith(tr, bad) + ":" + p.params(tr) + " "
			}
			out += p.readWith(tr, pw) + ":" + p.params(tr) + " " + lockoutCounter(tr) + " "
			// A failed HMAC counts as a failed password does.
			out += p.set(tr, 0, 2) + " "
			out += p.readWith(tr, gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("bad")))) + ":" + p.params(tr) + " "
			out += p.readWith(tr, gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pin")))) + ":" + p.params(tr) + " "
			// PolicySecret with a wrong password counts too.
			s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
			if err != nil {
				return out + rcString(err)
			}
			defer closer()
			_, err = (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: p.h, Name: p.name, Auth: bad},
				PolicySession: s.Handle(), NonceTPM: s.NonceTPM()}).Execute(tr)
			out += rcString(err) + ":" + p.params(tr) + " " + lockoutCounter(tr)
			return out
		}},
		{"An ordinary index's authValue without AUTHREAD or AUTHWRITE", func(tr transport.TPM) string {
			out := ""
			for _, a := range []gt.TPMANV{{OwnerRead: true, AuthWrite: true}, {OwnerWrite: true, AuthRead: true}} {
				a.NT = gt.TPMNTOrdinary
				p, done, err := definePin(tr, gt.TPMSNVPublic{NVIndex: 0x01500045, NameAlg: gt.TPMAlgSHA256, Attributes: a, DataSize: 8}, "pw")
				if err != nil {
					return out + rcString(err)
				}
				pw := gt.PasswordAuth([]byte("pw"))
				_, err = (gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: p.h, Name: p.name, Auth: pw},
					NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name}, Data: gt.TPM2BMaxNVBuffer{Buffer: make([]byte, 8)}}).Execute(tr)
				out += rcString(err) + " "
				p.refresh(tr)
				out += p.readWith(tr, pw) + " "
				s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
				if err != nil {
					done()
					return out + rcString(err)
				}
				_, err = (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: p.h, Name: p.name, Auth: pw},
					PolicySession: s.Handle(), NonceTPM: s.NonceTPM()}).Execute(tr)
				out += rcString(err) + " "
				closer()
				done()
			}
			return out
		}},
		{"An index's authPolicy: POLICYREAD/POLICYWRITE; PIN counting in a policy session", func(tr transport.TPM) string {
			pol := calcPolicy(func(pc *gt.PolicyCalculator) error { return (gt.PolicyAuthValue{}).Update(pc) })
			withPolicy := func(p *pinIndex) gt.AuthHandle {
				return gt.AuthHandle{Handle: p.h, Name: p.name, Auth: gt.Policy(gt.TPMAlgSHA256, 16,
					func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
						_, err := (gt.PolicyAuthValue{PolicySession: s}).Execute(tpm)
						return err
					}, gt.Auth([]byte("pw")))}
			}
			out := ""
			for _, c := range []struct {
				a      gt.TPMANV
				policy []byte
			}{
				{gt.TPMANV{NT: gt.TPMNTOrdinary, OwnerRead: true, PolicyWrite: true}, pol},
				{gt.TPMANV{NT: gt.TPMNTOrdinary, OwnerWrite: true, PolicyRead: true}, nil},
				{gt.TPMANV{NT: gt.TPMNTPinPass, OwnerWrite: true, OwnerRead: true, PolicyRead: true}, pol},
				{gt.TPMANV{NT: gt.TPMNTPinFail, OwnerWrite: true, OwnerRead: true, PolicyRead: true, NoDA: true}, pol},
			} {
				p, done, err := definePin(tr, gt.TPMSNVPublic{NVIndex: 0x01500046, NameAlg: gt.TPMAlgSHA256, Attributes: c.a,
					AuthPolicy: gt.TPM2BDigest{Buffer: c.policy}, DataSize: 8}, "pw")
				if err != nil {
					return out + rcString(err)
				}
				if c.a.OwnerWrite {
					out += p.set(tr, 0, 1) + " "
				} else {
					_, err = (gt.NVWrite{AuthHandle: withPolicy(p), NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name},
						Data: gt.TPM2BMaxNVBuffer{Buffer: make([]byte, 8)}}).Execute(tr)
					out += rcString(err) + " "
					p.refresh(tr)
				}
				for i := 0; i < 2; i++ {
					_, err = (gt.NVRead{AuthHandle: withPolicy(p), NVIndex: gt.NamedHandle{Handle: p.h, Name: p.name}, Size: 8}).Execute(tr)
					out += rcString(err) + ":" + p.params(tr) + " "
				}
				done()
			}
			return out
		}},
		{"PP_Commands and GetCapability(TPM_CAP_PP_COMMANDS)", func(tr transport.TPM) string {
			out := ppList(tr, 0, 64) + " "
			out += ppCommands(tr, []uint32{uint32(gt.TPMCCClockRateAdjust), uint32(gt.TPMCCNVGlobalWriteLock),
				uint32(gt.TPMCCGetRandom), 0x1FF}, nil) + " "
			out += ppList(tr, 0, 64) + " " + ppList(tr, uint32(gt.TPMCCClockRateAdjust), 1) + " "
			// A PP command authorized by the platform needs physical presence.
			out += sendRC(tr, rawCommand(uint32(gt.TPMCCClockRateAdjust), []uint32{uint32(gt.TPMRHPlatform)}, emptyPassword, []byte{0})) + " "
			out += sendRC(tr, rawCommand(uint32(gt.TPMCCClockRateAdjust), []uint32{uint32(gt.TPMRHOwner)}, emptyPassword, []byte{0})) + " "
			out += ppCommands(tr, nil, []uint32{uint32(gt.TPMCCClockRateAdjust), uint32(gt.TPMCCNVGlobalWriteLock),
				uint32(gt.TPMCCPPCommands)}) + " "
			out += ppList(tr, 0, 64) + " "
			out += sendRC(tr, rawCommand(uint32(gt.TPMCCPPCommands), []uint32{uint32(gt.TPMRHOwner)}, emptyPassword, make([]byte, 8)))
			return out
		}},
		{"A PolicyPhysicalPresence session without physical presence", func(tr transport.TPM) string {
			// The policy digest is H(0…0 || TPM_CC_PolicyPhysicalPresence).
			pol := sha256.Sum256(binary.BigEndian.AppendUint32(make([]byte, 32), uint32(gt.TPMCCPolicyPhysicalPresence)))
			obj, done, err := sealWithPolicy(tr, pol[:])
			if err != nil {
				return rcString(err)
			}
			defer done()
			_, err = (gt.Unseal{ItemHandle: gt.AuthHandle{Handle: obj.Handle, Name: obj.Name, Auth: gt.Policy(gt.TPMAlgSHA256, 16,
				func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
					_, err := tpm.Send(rawCommand(uint32(gt.TPMCCPolicyPhysicalPresence), []uint32{uint32(s)}, nil, nil))
					return err
				})}}).Execute(tr)
			return rcString(err)
		}},
		{"SetAlgorithmSet", func(tr transport.TPM) string {
			set := func(h uint32, v uint32) string {
				return sendRC(tr, rawCommand(uint32(gt.TPMCCSetAlgorithmSet), []uint32{h}, emptyPassword, binary.BigEndian.AppendUint32(nil, v)))
			}
			prop := func() string {
				r, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTAlgorithmSet), PropertyCount: 1}).Execute(tr)
				if err != nil {
					return rcString(err)
				}
				p, _ := r.CapabilityData.Data.TPMProperties()
				return fmt.Sprintf("%+v", p.TPMProperty)
			}
			out := prop() + " " + set(uint32(gt.TPMRHPlatform), 7) + " " + prop() + " "
			out += set(uint32(gt.TPMRHOwner), 9) + " " + prop() + " " + set(uint32(gt.TPMRHPlatform), 0) + " " + prop()
			return out
		}},
	}
}
