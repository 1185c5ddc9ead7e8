package tpm2

import (
	"encoding/binary"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// seedCommands are well-formed commands (as go-tpm sends them) that seed
// the dispatcher fuzzer.
func seedCommands(t testing.TB) [][]byte {
	var cmds [][]byte
	rec := &recorder{}
	tp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec.t = tp
	tr := rec
	_, _ = (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr)
	_, _ = (gt.GetRandom{BytesRequested: 8}).Execute(tr)
	_, _ = (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: 0x100, PropertyCount: 10}).Execute(tr)
	_, _ = (gt.PCRRead{PCRSelectionIn: pcrSel(gt.TPMAlgSHA256, 0, 1)}).Execute(tr)
	_, _ = (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 1, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA1, Digest: make([]byte, 20)}}}}).Execute(tr)
	cp, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tr)
	if err == nil {
		_, _ = (gt.ContextSave{SaveHandle: cp.ObjectHandle}).Execute(tr)
		_, _ = (gt.ReadPublic{ObjectHandle: cp.ObjectHandle}).Execute(tr)
		_, _ = (gt.Create{ParentHandle: gt.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name}, InPublic: gt.New2B(gt.TPMTPublic{
			Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
			ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true},
			Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}}),
		})}).Execute(tr, gt.HMAC(gt.TPMAlgSHA256, 16))
		// A derivation parent and a key derived under it.
		if dp, err := createDerivationParent(tr, gt.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name}, []byte("secret")); err == nil {
			_, _ = (gt.CreateLoaded{ParentHandle: dp, InPublic: gt.New2BTemplate(&derivedECCTemplate)}).Execute(tr)
		}
	}
	if err == nil {
		// Duplication: an unwrapped Import, Duplicate with an inner and
		// an outer wrapper, Import of it, Rewrap.
		srk := gt.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name}
		pub := tkPublic(dupCC, false)
		im, err := (gt.Import{ParentHandle: srk, ObjectPublic: gt.New2B(pub), Duplicate: gt.TPM2BPrivate{Buffer: tkSensitive()}, Symmetric: symDef(0)}).Execute(tr)
		if err == nil {
			ld, err := (gt.Load{ParentHandle: srk, InPublic: gt.New2B(pub), InPrivate: im.OutPrivate}).Execute(tr)
			if err == nil {
				obj := gt.NamedHandle{Handle: ld.ObjectHandle, Name: ld.Name}
				if d, err := duplicateTK(tr, obj, srk, nil, symDef(128)); err == nil {
					_, _ = (gt.Import{ParentHandle: srk, EncryptionKey: gt.TPM2BData{Buffer: d.EncryptionKeyOut.Buffer}, ObjectPublic: gt.New2B(pub),
						Duplicate: d.Duplicate, InSymSeed: d.OutSymSeed, Symmetric: symDef(128)}).Execute(tr)
					_, _ = tr.Send(rawCommand(uint32(gt.TPMCCRewrap), []uint32{uint32(srk.Handle), rhNull}, passwordAuth(nil),
						append(append(sized(d.Duplicate.Buffer), sized(obj.Name.Buffer)...), sized(d.OutSymSeed.Buffer)...)))
				}
				_, _ = (gt.FlushContext{FlushHandle: obj.Handle}).Execute(tr)
			}
		}
	}
	_, _ = (gt.StartAuthSession{TPMKey: gt.TPMRHNull, Bind: gt.TPMRHNull, NonceCaller: gt.TPM2BNonce{Buffer: make([]byte, 16)},
		SessionType: gt.TPMSEPolicy, Symmetric: gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}, AuthHash: gt.TPMAlgSHA256}).Execute(tr)
	_, _ = (gt.Hash{Data: gt.TPM2BMaxBuffer{Buffer: []byte("abc")}, HashAlg: gt.TPMAlgSHA256, Hierarchy: gt.TPMRHOwner}).Execute(tr)
	// A PIN-pass index: defined, its pinCount/pinLimit written, used.
	pin := gt.TPMSNVPublic{NVIndex: 0x01500060, NameAlg: gt.TPMAlgSHA256, DataSize: 8,
		Attributes: gt.TPMANV{NT: gt.TPMNTPinPass, OwnerWrite: true, OwnerRead: true, AuthRead: true}}
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, Auth: gt.TPM2BAuth{Buffer: []byte("pin")}, PublicInfo: gt.New2B(pin)}).Execute(tr); err == nil {
		name, _ := gt.NVName(&pin)
		_, _ = (gt.NVWrite{AuthHandle: gt.TPMRHOwner, NVIndex: gt.NamedHandle{Handle: pin.NVIndex, Name: *name},
			Data: gt.TPM2BMaxNVBuffer{Buffer: []byte{0, 0, 0, 0, 0, 0, 0, 3}}}).Execute(tr)
		pin.Attributes.Written = true
		name, _ = gt.NVName(&pin)
		_, _ = (gt.NVRead{AuthHandle: gt.AuthHandle{Handle: pin.NVIndex, Name: *name, Auth: gt.PasswordAuth([]byte("pin"))},
			NVIndex: gt.NamedHandle{Handle: pin.NVIndex, Name: *name}, Size: 8}).Execute(tr)
	}
	// Two-phase ECC: Commit with P1 and with s2/y2, an ECDAA Sign.
	if dk, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(ecdaaTemplate())}).Execute(tr); err == nil {
		key := gt.NamedHandle{Handle: dk.ObjectHandle, Name: dk.Name}
		g := gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: make([]byte, 32)}, Y: gt.TPM2BECCParameter{Buffer: make([]byte, 32)}}
		_, _ = (gt.Commit{SignHandle: key, P1: gt.New2B(g), S2: gt.TPM2BSensitiveData{Buffer: []byte("s2")},
			Y2: gt.TPM2BECCParameter{Buffer: make([]byte, 32)}}).Execute(tr)
		if cm, err := (gt.Commit{SignHandle: key, P1: gt.New2B(gt.TPMSECCPoint{})}).Execute(tr); err == nil {
			_, _ = ecdaaSign(tr, key, cm.Counter)
		}
	}
	cmds = append(cmds, rec.cmds...)
	// Commands go-tpm has no structure for, on the policy session above
	// (0x03000000) and the owner: PolicyTicket, PolicyCounterTimer,
	// PolicyTemplate, PolicyPhysicalPresence, ClockRateAdjust,
	// SetCommandCodeAuditStatus, GetCommandAuditDigest, PCR_SetAuthValue,
	// PCR_SetAuthPolicy, PP_Commands, SetAlgorithmSet, EC_Ephemeral,
	// ZGen_2Phase.
	pw := []byte{0x40, 0, 0, 9, 0, 0, 0, 0, 0}
	sess := []uint32{0x03000000}
	for _, c := range []struct {
		cc      gt.TPMCC
		handles []uint32
		auths   []byte
		params  []byte
	}{
		{gt.TPMCCPolicyTicket, sess, nil, append(append([]byte{0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 0x40, 0, 0, 1}, 0x80, 0x25, 0x40, 0, 0, 1), 0, 0)},
		{gt.TPMCCPolicyCounterTimer, sess, nil, []byte{0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 7}},
		{gt.TPMCCPolicyTemplate, sess, nil, append([]byte{0, 32}, make([]byte, 32)...)},
		{gt.TPMCCPolicyPhysicalPresence, sess, nil, nil},
		{gt.TPMCCClockRateAdjust, []uint32{rhOwner}, pw, []byte{3}},
		{gt.TPMCCSetCommandCodeAuditStatus, []uint32{rhOwner}, pw, []byte{0, 0x10, 0, 0, 0, 1, 0, 0, 1, 0x7B, 0, 0, 0, 0}},
		{gt.TPMCCGetCommandAuditDigest, []uint32{rhEndorsement, rhNull}, append(append([]byte{}, pw...), pw...), []byte{0, 0, 0, 0x10}},
		{gt.TPMCCPCRSetAuthValue, []uint32{20}, pw, []byte{0, 2, 'p', 'w'}},
		{gt.TPMCCECEphemeral, nil, nil, []byte{0, 3}},
		// ZGen_2Phase on the first object: inQsB, inQeB (empty
		// coordinates), ECDH, counter 0.
		{gt.TPMCCZGen2Phase, []uint32{0x80000000}, pw, []byte{0, 4, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0x19, 0, 0}},
		{gt.TPMCCPCRSetAuthPolicy, []uint32{rhPlatform}, pw, append(append([]byte{0, 32}, make([]byte, 32)...), 0, 0x0b, 0, 0, 0, 21)},
		{gt.TPMCCPPCommands, []uint32{rhPlatform}, pw, []byte{0, 0, 0, 1, 0, 0, 1, 0x30, 0, 0, 0, 1, 0, 0, 1, 0x2D}},
		{gt.TPMCCSetAlgorithmSet, []uint32{rhPlatform}, pw, []byte{0, 0, 0, 7}},
	} {
		cmds = append(cmds, rawCommand(uint32(c.cc), c.handles, c.auths, c.params))
	}
	// A TPM 1.2 command and a truncated header.
	cmds = append(cmds, []byte{0x00, 0xC1, 0, 0, 0, 0x0A, 0, 0, 0, 0x99}, []byte{0x80, 0x01, 0, 0})
	return cmds
}

type recorder struct {
	t    *TPM
	cmds [][]byte
	rsp  []byte // the last response
}

func (r *recorder) Send(cmd []byte) ([]byte, error) {
	r.cmds = append(r.cmds, append([]byte{}, cmd...))
	r.rsp = r.t.Process(cmd, 0)
	return r.rsp, nil
}

// checkResponse asserts the framing invariants every response keeps.
func checkResponse(t *testing.T, cmd, rsp []byte) {
	if len(rsp) < 10 {
		t.Fatalf("short response % x to % x", rsp, cmd)
	}
	if int(binary.BigEndian.Uint32(rsp[2:])) != len(rsp) {
		t.Fatalf("response size field %d != %d", binary.BigEndian.Uint32(rsp[2:]), len(rsp))
	}
	if len(rsp) > maxResponseSize {
		t.Fatalf("response of %d bytes", len(rsp))
	}
	tag := binary.BigEndian.Uint16(rsp)
	if tag != stNoSessions && tag != stSessions && tag != tpm12RspCommand {
		t.Fatalf("response tag 0x%x", tag)
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 && len(rsp) != 10 {
		t.Fatalf("error response 0x%x with a body", rc)
	}
}

// FuzzProcess feeds arbitrary bytes to a started TPM that has a primary
// key loaded: any input must produce a well-formed response, and an
// engine panic fails the run (onPanic is armed by the tests).
func FuzzProcess(f *testing.F) {
	for _, c := range seedCommands(f) {
		f.Add(c)
	}
	tp, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, cmd []byte) {
		rsp := tp.Process(cmd, 0)
		checkResponse(t, cmd, rsp)
		// Keep the instance from filling up so later inputs still reach
		// the handlers.
		for h := range tp.objects {
			if len(tp.objects) > 4 {
				delete(tp.objects, h)
			}
		}
		for h := range tp.sessions {
			if len(tp.sessions) > 8 {
				delete(tp.sessions, h)
			}
		}
	})
}

// FuzzLoadState: a state blob either loads into a working TPM or is
// refused with ErrBadState; never a panic.
func FuzzLoadState(f *testing.F) {
	tp, _ := newStarted(f)
	blob, err := tp.Save()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add(blob[:len(blob)/2])
	f.Add([]byte("XVTPMST\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, err := New(Config{State: b})
		if err != nil {
			return
		}
		rsp := tp.Process([]byte{0x80, 0x01, 0, 0, 0, 0x0C, 0, 0, 0x01, 0x44, 0, 0}, 0)
		checkResponse(t, nil, rsp)
		if _, err := tp.Save(); err != nil {
			t.Fatalf("loaded state does not save: %v", err)
		}
	})
}
