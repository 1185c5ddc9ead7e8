package manager

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// vtpmEKs derives a fresh engine's two EKs, as the vTPM domain does.
func vtpmEKs(t testing.TB) (rsaPub, eccPub []byte) {
	t.Helper()
	e, err := tpm2.New(tpm2.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var out [2][]byte
	for i, tmpl := range []gt.TPMTPublic{gt.RSAEKTemplate, gt.ECCEKTemplate} {
		p, err := e.EndorsementPublic(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = gt.Marshal(p)
	}
	return out[0], out[1]
}

func certifyReq(pub []byte) proto.CertifyEK {
	return proto.CertifyEK{Manufacturer: 0x58564D54, Model: "xenvtpm", Version: 0x00010002, Public: pub}
}

func TestCertifyEK(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hwOf(t, s), Config{Admins: []uint32{0}})
	rsaPub, eccPub := vtpmEKs(t)
	u := uuidN(1)
	if _, err := m.CertifyEK(u, certifyReq(rsaPub)); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("a vTPM with no record was certified: %v", err)
	}
	if err := m.SaveHashKey(u, blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
	commits := m.Stats().Commits
	caDER, err := m.GroupCACert(0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Stats().Commits != commits+1 {
		t.Error("making the CA was not one commit")
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	for _, pub := range [][]byte{rsaPub, eccPub} {
		der, err := m.CertifyEK(u, certifyReq(pub))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := gt.Unmarshal[gt.TPMTPublic](pub)
		want, _ := gt.Pub(*p)
		c, err := ekcert.Check(der, ca, want)
		if err != nil {
			t.Fatal(err)
		}
		if c.Info.Model != "xenvtpm" || c.Info.Manufacturer != 0x58564D54 {
			t.Errorf("info %+v", c.Info)
		}
	}
	if m.Stats().Commits != commits+1 || m.Stats().EKCerts != 2 {
		t.Errorf("stats after two certificates: %+v", m.Stats())
	}

	// Not an EK: a signing key, another size, another nameAlg, a point
	// off the curve, trailing bytes.
	sign := gt.ECCEKTemplate
	sign.ObjectAttributes.SignEncrypt = true
	sign.ObjectAttributes.Decrypt = false
	rsa3072, _ := gt.Unmarshal[gt.TPMTPublic](rsaPub)
	rsaDetail, _ := rsa3072.Parameters.RSADetail()
	d3072 := *rsaDetail
	d3072.KeyBits = 3072
	rsa3072.Parameters = gt.NewTPMUPublicParms(gt.TPMAlgRSA, &d3072)
	offCurve, _ := gt.Unmarshal[gt.TPMTPublic](eccPub)
	pt, _ := offCurve.Unique.ECC()
	pt.Y.Buffer = bytes.Repeat([]byte{1}, 32)
	for name, c := range map[string]struct {
		pub  []byte
		want error
	}{
		"signing key":  {gt.Marshal(sign), proto.ErrKeyType},
		"RSA-3072":     {gt.Marshal(*rsa3072), proto.ErrKeyType},
		"off curve":    {gt.Marshal(offCurve), proto.ErrBadRequest},
		"trailing":     {append(bytes.Clone(eccPub), 0), proto.ErrBadRequest},
		"empty RSA EK": {gt.Marshal(gt.RSAEKTemplate), proto.ErrBadRequest},
	} {
		if _, err := m.CertifyEK(u, certifyReq(c.pub)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}

	// The CA survives a restart; another group has its own.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	m = openMgr(t, d, hwOf(t, s), Config{Admins: []uint32{0}})
	again, err := m.GroupCACert(0)
	if err != nil || !bytes.Equal(again, caDER) {
		t.Fatalf("group 0's CA after a restart: %v", err)
	}
	_, wire := saaKey(t, "ecdsa")
	if _, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire}); err != nil { // group 0's SAA
		t.Fatal(err)
	}
	if again, _ := m.GroupCACert(0); !bytes.Equal(again, caDER) {
		t.Fatal("giving group 0 its SAA changed its CA")
	}
	_, id, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	other, err := m.GroupCACert(id)
	if err != nil || bytes.Equal(other, caDER) {
		t.Fatalf("group %d's CA: %v (same as group 0's: %v)", id, err, bytes.Equal(other, caDER))
	}
	if _, err := m.GroupCACert(99); !errors.Is(err, proto.ErrNoGroup) {
		t.Errorf("CA of a missing group: %v", err)
	}
}

// A TPM 1.2 vTPM's EK (its TPM_PUBKEY) gets a certificate naming the TPM
// 1.2 specification; a TPM_PUBKEY of a signing key or another size is
// refused.
func TestCertifyEK12(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	m := openMgr(t, newMemDisk(512, diskBytes), hwOf(t, s), Config{Admins: []uint32{0}})
	e, err := tpm12.New(tpm12.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := e.EKPublic()
	if err != nil {
		t.Fatal(err)
	}
	u := uuidN(2)
	if err := m.SaveHashKey(u, blobN(2, 1)); err != nil {
		t.Fatal(err)
	}
	req := certifyReq(pub)
	req.Family = proto.FamilyEK12
	der, err := m.CertifyEK(u, req)
	if err != nil {
		t.Fatal(err)
	}
	caDER, _ := m.GroupCACert(0)
	ca, _ := x509.ParseCertificate(caDER)
	want, _ := hwtpm.ParsePubKey12(pub)
	c, err := ekcert.Check(der, ca, want)
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec.Family != "1.2" {
		t.Errorf("spec %+v", c.Spec)
	}
	sign := bytes.Clone(pub)
	sign[5], sign[7] = 0x01, 0x02 // TPM_ES_NONE, TPM_SS_RSASSAPKCS1v15_SHA1
	for name, p := range map[string][]byte{"signing key": sign, "a TPM 2.0 public area": gt.Marshal(gt.RSAEKTemplate), "cut": pub[:100]} {
		r := certifyReq(p)
		r.Family = proto.FamilyEK12
		if _, err := m.CertifyEK(u, r); err == nil {
			t.Errorf("%s certified", name)
		}
	}
	// A TPM 1.2 EK sent as a TPM 2.0 one does not decode.
	if _, err := m.CertifyEK(u, certifyReq(pub)); !errors.Is(err, proto.ErrBadRequest) {
		t.Errorf("a TPM_PUBKEY without the family: %v", err)
	}
}

// Through the dispatcher: a CERTIFY_EK request from the vTPM and dom0's
// GROUP_CA_CERT; a non-admin frontend gets no CA certificate.
func TestCertifyEKProtocol(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	m := openMgr(t, newMemDisk(512, diskBytes), hwOf(t, s), Config{Admins: []uint32{0}})
	h := proto.Handler{Backend: m}
	vtpm := proto.PeerInfo{DomID: 5, UUID: uuidN(2)}
	if err := m.SaveHashKey(vtpm.UUID, blobN(2, 1)); err != nil {
		t.Fatal(err)
	}
	_, eccPub := vtpmEKs(t)
	req, err := proto.EncodeCertifyEK(certifyReq(eccPub))
	if err != nil {
		t.Fatal(err)
	}
	der, err := proto.ParseResponse(h.Handle(req, vtpm), proto.TagVTPMReq)
	if err != nil {
		t.Fatal(err)
	}
	caDER, err := proto.ParseResponse(h.Handle(proto.EncodeGroupCACert(0), proto.PeerInfo{DomID: 0, UUID: uuidN(3)}), proto.TagMgmtReq)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	if _, err := ekcert.Check(der, ca, nil); err != nil {
		t.Fatal(err)
	}
	var pe *proto.Error
	if _, err := proto.ParseResponse(h.Handle(proto.EncodeGroupCACert(0), vtpm), proto.TagMgmtReq); !errors.As(err, &pe) || pe.Code != proto.TPMAuthFail {
		t.Fatalf("GROUP_CA_CERT from a vTPM domain: %v", err)
	}
}

// Certificates are dated by Config.WallClock (Xen's wall clock in the
// manager domain), not by the manager's own clock.
func TestCertifyEKWallClock(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	day := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	m := openMgr(t, newMemDisk(512, diskBytes), hwOf(t, s), Config{Admins: []uint32{0}, WallClock: func() time.Time { return day }})
	u := uuidN(3)
	if err := m.SaveHashKey(u, blobN(3, 1)); err != nil {
		t.Fatal(err)
	}
	rsaPub, _ := vtpmEKs(t)
	der, err := m.CertifyEK(u, certifyReq(rsaPub))
	if err != nil {
		t.Fatal(err)
	}
	caDER, _ := m.GroupCACert(0)
	for name, d := range map[string][]byte{"EK certificate": der, "CA": caDER} {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		if want := day.Add(-time.Hour); !c.NotBefore.Equal(want) {
			t.Errorf("%s: notBefore %v, want %v", name, c.NotBefore, want)
		}
	}
}
