package vtpm

import (
	"time"

	gt "github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// EK certificates: a TPM 2.0 vTPM with a manager plays the manufacturer.
// At its first start, and at any later start that finds one missing
// (a vTPM made before this feature, or one whose certificate could not be
// had then), it derives its EKs from the TCG default templates (L-1
// RSA-2048, L-2 NIST P-256), has the manager certify them with its
// group's CA (CERTIFY_EK), and leaves each certificate in the EK
// Credential Profile's platform NV index (ekcert.NVIndexRSA2048Cert,
// NVIndexECCP256Cert), where tpm2_getekcertificate, keylime and Windows
// look. This happens before the guest's first command, and the indices
// are platform-created, so the guest's TPM2_Clear keeps them.
//
// A TPM 1.2 vTPM (tpm=1.2) has one EK, RSA-2048: its certificate goes to
// TPM_NV_INDEX_EKCert in the PC Client framing (tpm12.ProvisionEKCert),
// an index the guest's TPM_OwnerClear keeps.

// ekCerts are the certified EKs: template and NV index.
var ekCerts = []struct {
	name     string
	template gt.TPMTPublic
	index    uint32
}{
	{"RSA-2048", gt.RSAEKTemplate, ekcert.NVIndexRSA2048Cert},
	{"ECC P-256", gt.ECCEKTemplate, ekcert.NVIndexECCP256Cert},
}

// provisionEKCerts gets the certificates the TPM lacks. A failure is
// logged and leaves the TPM serving without that certificate: the next
// start tries again.
func (s *Server) provisionEKCerts(certify func(proto.CertifyEK) ([]byte, error)) {
	if t, ok := s.tpm.(tpm12Engine); ok {
		s.provisionEKCert12(t.TPM, certify)
		return
	}
	t, ok := s.tpm.(*tpm2.TPM)
	if !ok {
		return
	}
	manufacturer, model, version := t.Identity()
	for _, k := range ekCerts {
		if _, _, ok := t.NVIndexData(k.index); ok {
			continue
		}
		t0 := time.Now()
		pub, err := t.EndorsementPublic(k.template)
		if err != nil {
			s.log.Errorf("EK certificate (%s): deriving the EK: %v", k.name, err)
			continue
		}
		der, err := certify(proto.CertifyEK{Manufacturer: manufacturer, Model: model, Version: version, Public: gt.Marshal(pub)})
		if err != nil {
			s.log.Errorf("EK certificate (%s): the manager did not issue it: %v; the guest finds no certificate at NV index %#x until a later start gets one", k.name, err, k.index)
			continue
		}
		idx := gt.TPMSNVPublic{NVIndex: gt.TPMHandle(k.index), NameAlg: gt.TPMAlgSHA256, Attributes: ekcert.NVCertAttributes()}
		if err := t.ProvisionNV(idx, der); err != nil {
			s.log.Errorf("EK certificate (%s): %v", k.name, err)
			continue
		}
		s.log.Infof("EK certificate (%s) from the manager at NV index %#x (%d bytes; EK derived, certified and stored in %v)",
			k.name, k.index, len(der), time.Since(t0).Round(time.Millisecond))
	}
}

// provisionEKCert12 is provisionEKCerts for a TPM 1.2.
func (s *Server) provisionEKCert12(t *tpm12.TPM, certify func(proto.CertifyEK) ([]byte, error)) {
	if _, ok := t.EKCert(); ok {
		return
	}
	t0 := time.Now()
	pub, err := t.EKPublic()
	if err != nil {
		s.log.Errorf("EK certificate (TPM 1.2): reading the EK: %v", err)
		return
	}
	manufacturer, model, version := t.Identity()
	der, err := certify(proto.CertifyEK{Manufacturer: manufacturer, Model: model, Version: version, Public: pub, Family: proto.FamilyEK12})
	if err != nil {
		s.log.Errorf("EK certificate (TPM 1.2): the manager did not issue it: %v; the guest finds no certificate at NV index %#x until a later start gets one", err, tpm12.NVIndexEKCert)
		return
	}
	if err := t.ProvisionEKCert(der); err != nil {
		s.log.Errorf("EK certificate (TPM 1.2): %v", err)
		return
	}
	s.log.Infof("EK certificate (RSA-2048, TPM 1.2) from the manager at NV index %#x (%d bytes; certified and stored in %v)",
		tpm12.NVIndexEKCert, len(der), time.Since(t0).Round(time.Millisecond))
}
