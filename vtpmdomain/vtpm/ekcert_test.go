package vtpm

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/internal/mgrtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// issuer stands in for the manager's CERTIFY_EK (whose own tests run
// against the manager): it signs with a CA of its own, or fails.
type issuer struct {
	ca    *x509.Certificate
	sign  func(pub []byte, info ekcert.TPMInfo) ([]byte, error)
	calls int
	fail  error
	// saved, if set, is the vTPM's saver: like the manager, the issuer
	// knows a vTPM only once it has saved.
	saved *memSaver
}

func newIssuer(t *testing.T) *issuer {
	key, ca, err := ekcert.NewCA("test CA", "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{ca: ca, sign: func(pub []byte, info ekcert.TPMInfo) ([]byte, error) {
		p, err := gt.Unmarshal[gt.TPMTPublic](pub)
		if err != nil {
			return nil, err
		}
		k, err := gt.Pub(*p)
		if err != nil {
			return nil, err
		}
		return ekcert.Issue(key, ca, k, info, time.Now().Add(-time.Hour), ekcert.NoExpiry)
	}}
}

func (i *issuer) certify(m proto.CertifyEK) ([]byte, error) {
	i.calls++
	if i.fail != nil {
		return nil, i.fail
	}
	if i.saved != nil && len(i.saved.blobs) == 0 {
		return nil, errors.New("TPM_KEYNOTFOUND: no record of this vTPM")
	}
	return i.sign(m.Public, ekcert.TPMInfo{Manufacturer: m.Manufacturer, Model: m.Model, Version: m.Version})
}

// readEKCert reads an EK certificate index the way tpm2_getekcertificate
// does: NV_ReadPublic, then NV_Read with the index's own empty auth.
func readEKCert(t *testing.T, s *Server, idx uint32) []byte {
	t.Helper()
	tr := serverTransport{s}
	pub, err := (gt.NVReadPublic{NVIndex: gt.TPMHandle(idx)}).Execute(tr)
	if err != nil {
		t.Fatalf("NV_ReadPublic %#x: %v", idx, err)
	}
	p, _ := pub.NVPublic.Contents()
	var out []byte
	for off := 0; off < int(p.DataSize); off += 512 {
		r, err := (gt.NVRead{
			AuthHandle: gt.AuthHandle{Handle: gt.TPMHandle(idx), Name: pub.NVName, Auth: gt.PasswordAuth(nil)},
			NVIndex:    gt.NamedHandle{Handle: gt.TPMHandle(idx), Name: pub.NVName},
			Size:       uint16(min(512, int(p.DataSize)-off)), Offset: uint16(off),
		}).Execute(tr)
		if err != nil {
			t.Fatalf("NV_Read %#x: %v", idx, err)
		}
		out = append(out, r.Data.Buffer...)
	}
	return out
}

// A new vTPM gets both certificates before its first command, they name
// the keys TPM2_CreatePrimary gives the guest, they are stored, and a
// restart asks for none again; the guest's TPM2_Clear keeps them.
func TestEKCertificatesProvisioned(t *testing.T) {
	is := newIssuer(t)
	sv := &memSaver{}
	is.saved = sv
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, CertifyEK: is.certify, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if is.calls != 2 || len(sv.blobs) != 2 {
		t.Fatalf("%d certificate requests, %d saves; want 2 and 2 (the new TPM, then its certificates)", is.calls, len(sv.blobs))
	}
	check := func(s *Server) {
		t.Helper()
		for i, k := range ekCerts {
			rsp, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHEndorsement, InPublic: gt.New2B(k.template)}).Execute(serverTransport{s})
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := rsp.OutPublic.Contents()
			ek, _ := gt.Pub(*pub)
			(gt.FlushContext{FlushHandle: rsp.ObjectHandle}).Execute(serverTransport{s})
			c, err := ekcert.Check(readEKCert(t, s, k.index), is.ca, ek)
			if err != nil {
				t.Fatalf("certificate %d: %v", i, err)
			}
			if c.Info.Model != "xenvtpm" {
				t.Errorf("model %q", c.Info.Model)
			}
		}
	}
	check(s)
	if _, err := (gt.Clear{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHLockout, Auth: gt.PasswordAuth(nil)}}).Execute(serverTransport{s}); err != nil {
		t.Fatal(err)
	}
	check(s)
	r, err := NewServer(Config{Options: Options{Startup: StartupClear}, State: sv.last(), Saver: sv, CertifyEK: is.certify, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if is.calls != 2 {
		t.Errorf("a restart asked for %d more certificates", is.calls-2)
	}
	check(r)
}

// A manager that issues nothing (an older one, or a refusal) leaves the
// vTPM serving, and the next start gets the certificates.
func TestEKCertificateLater(t *testing.T) {
	is := newIssuer(t)
	is.fail = errors.New("VTPM_UNSUPPORTED")
	sv := &memSaver{}
	s, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv, CertifyEK: is.certify, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.NVReadPublic{NVIndex: gt.TPMHandle(ekcert.NVIndexRSA2048Cert)}).Execute(serverTransport{s}); err == nil {
		t.Fatal("a certificate index exists though the manager issued nothing")
	}
	is.fail = nil
	r, err := NewServer(Config{Options: Options{Startup: StartupClear}, State: sv.last(), Saver: sv, CertifyEK: is.certify, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ekcert.Check(readEKCert(t, r, ekcert.NVIndexECCP256Cert), is.ca, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := mustTPM2(t, sv.last()).NVIndexData(ekcert.NVIndexRSA2048Cert); !ok {
		t.Fatal("the certificates got at the second start were not saved")
	}
}

func mustTPM2(t *testing.T, state []byte) interface {
	NVIndexData(uint32) (gt.TPMSNVPublic, []byte, bool)
} {
	t.Helper()
	e, err := family20.newEngine(state, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return e.(interface {
		NVIndexData(uint32) (gt.TPMSNVPublic, []byte, bool)
	})
}

// A TPM 1.2 vTPM's EK certificate, from the real manager: at its first
// start it is in TPM_NV_INDEX_EKCert, which the guest reads without
// authorization in the PC Client framing; it certifies the EK
// TPM_ReadPubek gives, names the TPM 1.2 specification, and is not asked
// for again at the next start.
func TestEKCertificate12(t *testing.T) {
	uuid := [16]byte{1, 2, 5}
	mgr := mgrtest.Start(t)
	mgr.AddVTPM(t, uuid)
	asked := 0
	certify := func(m proto.CertifyEK) ([]byte, error) {
		asked++
		req, err := proto.EncodeCertifyEK(m)
		if err != nil {
			return nil, err
		}
		return mgr.Ask(req, proto.PeerInfo{DomID: 5, UUID: uuid})
	}
	sv := &memSaver{}
	s := new12(t, Config{CertifyEK: certify, Saver: sv})
	if asked != 1 || len(sv.blobs) == 0 {
		t.Fatalf("asked %d times, %d saves", asked, len(sv.blobs))
	}
	// TPM_NV_ReadValue (no authorization) of the index, in two reads as
	// TrouSerS does.
	read := func(off, n uint32) []byte {
		return send12(t, s, cmd12(0xCF, be32(tpm12.NVIndexEKCert), be32(off), be32(n)))[4:]
	}
	head := read(0, 5)
	n := uint32(head[3])<<8 | uint32(head[4])
	der, err := ekcert.Unframe12(append(head, read(5, n)...))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := mgr.Dom0().GroupCACert(0)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := s.tpm.(tpm12Engine).EKPublic()
	ek, err := hwtpm.ParsePubKey12(pub)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ekcert.Check(der, ca, ek)
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec.Family != "1.2" || c.Info.Manufacturer != 0x58565450 {
		t.Errorf("spec %+v, info %+v", c.Spec, c.Info)
	}
	s2 := new12(t, Config{CertifyEK: certify, State: sv.last()})
	if asked != 1 {
		t.Errorf("asked again at the next start (%d)", asked)
	}
	if again, ok := s2.tpm.(tpm12Engine).EKCert(); !ok || string(again) != string(der) {
		t.Error("the certificate did not persist")
	}
}
