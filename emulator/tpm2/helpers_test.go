package tpm2

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// localTransport sends at a locality the test sets.
type localTransport struct {
	t   *TPM
	loc uint8
}

func (l *localTransport) Send(cmd []byte) ([]byte, error) { return l.t.Process(cmd, l.loc), nil }

// rawCommand builds a command with the given handles, authorization area
// (nil: TPM_ST_NO_SESSIONS) and parameters.
func rawCommand(cc uint32, handles []uint32, auths, params []byte) []byte {
	tag := stNoSessions
	if auths != nil {
		tag = stSessions
	}
	b := binary.BigEndian.AppendUint16(nil, tag)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, cc)
	for _, h := range handles {
		b = binary.BigEndian.AppendUint32(b, h)
	}
	if auths != nil {
		b = binary.BigEndian.AppendUint32(b, uint32(len(auths)))
		b = append(b, auths...)
	}
	b = append(b, params...)
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

// passwordAuth is one TPMS_AUTH_COMMAND for TPM_RS_PW.
func passwordAuth(pw []byte) []byte {
	b := u32(rsPW)
	b = append(b, sized(nil)...)
	b = append(b, saContinueSession)
	return append(b, sized(pw)...)
}

func responseCode(rsp []byte) uint32 {
	if len(rsp) < 10 {
		return 0xFFFFFFFF
	}
	return binary.BigEndian.Uint32(rsp[6:])
}

// policyLocality sends TPM2_PolicyLocality (go-tpm has no structure).
func policyLocality(tr transport.TPM, s gt.TPMISHPolicy, set uint8) uint32 {
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCPolicyLocality), []uint32{uint32(s)}, nil, []byte{set}))
	return responseCode(rsp)
}

// hierarchyControl disables hierarchy en with the platform's (empty)
// password.
func hierarchyControl(t *testing.T, tr transport.TPM, en uint32) {
	t.Helper()
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCHierarchyControl), []uint32{rhPlatform}, passwordAuth(nil), append(u32(en), 0)))
	if rc := responseCode(rsp); rc != rcSuccess {
		t.Fatalf("HierarchyControl(0x%08x, NO): rc 0x%x", en, rc)
	}
}

// sealedWithPolicy creates and loads a sealed "x" whose only authorization
// is policy.
func sealedWithPolicy(t *testing.T, tr transport.TPM, policy []byte) gt.AuthHandle {
	t.Helper()
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	r, err := (gt.CreateLoaded{ParentHandle: gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name},
		InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: []byte("x")})}},
		InPublic: gt.New2BTemplate(&gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
			ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true},
			AuthPolicy:       gt.TPM2BDigest{Buffer: policy},
			Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}})}),
	}).Execute(tr)
	if err != nil {
		t.Fatalf("CreateLoaded: %v", err)
	}
	return gt.AuthHandle{Handle: r.ObjectHandle, Name: r.Name}
}

func unseal(tr transport.TPM, h gt.AuthHandle, policy func(transport.TPM, gt.TPMISHPolicy, gt.TPM2BNonce) error) error {
	h.Auth = gt.Policy(gt.TPMAlgSHA256, 16, policy)
	_, err := (gt.Unseal{ItemHandle: h}).Execute(tr)
	return err
}

func policyDigest(f func(*gt.PolicyCalculator) error) []byte {
	pc, _ := gt.NewPolicyCalculator(gt.TPMAlgSHA256)
	if err := f(pc); err != nil {
		panic(err)
	}
	return pc.Hash().Digest
}

// secretName matches identifiers that hold authValues, keys or MACs.
var secretName = regexp.MustCompile(`(?i)auth|secret|hmac|key|seed|proof|sensitive|password`)

// engineTransport is an in-process go-tpm transport over Process.
type engineTransport struct{ t *TPM }

func (e engineTransport) Send(cmd []byte) ([]byte, error) { return e.t.Process(cmd, 0), nil }

// restarted is a new instance from a saved blob after Startup(su).
func restarted(t testing.TB, blob []byte, su gt.TPMSU) (*TPM, transport.TPM) {
	t.Helper()
	tp, err := New(Config{State: blob})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: su}).Execute(tr); err != nil {
		t.Fatalf("Startup after a restart: %v", err)
	}
	return tp, tr
}

func newStarted(t testing.TB) (*TPM, transport.TPM) {
	t.Helper()
	tp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatalf("Startup: %v", err)
	}
	return tp, tr
}

func wantRC(t *testing.T, err error, rc uint32) {
	t.Helper()
	var e gt.TPMRC
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want TPM_RC 0x%x", err, rc)
	}
	if uint32(e) != rc {
		t.Fatalf("got 0x%x (%v), want 0x%x", uint32(e), err, rc)
	}
}

func init() {
	onPanic = func(r any, stack []byte) { panic(fmt.Sprintf("engine panic: %v\n%s", r, stack)) }
}

func createPrimary(t testing.TB, tr transport.TPM, h gt.TPMHandle, tmpl gt.TPMTPublic) *gt.CreatePrimaryResponse {
	t.Helper()
	r, err := (gt.CreatePrimary{PrimaryHandle: h, InPublic: gt.New2B(tmpl)}).Execute(tr)
	if err != nil {
		t.Fatalf("CreatePrimary: %v", err)
	}
	return r
}

func digestOf(b []byte) []byte { d := sha256.Sum256(b); return d[:] }
