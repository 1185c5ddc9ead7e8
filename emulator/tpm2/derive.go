package tpm2

import (
	"crypto"
	"io"

	gt "github.com/google/go-tpm/tpm2"
)

// Derived objects, Part 1 §28.2 and Part 3 §12.9: under a derivation
// parent, TPM2_CreateLoaded makes an object whose secret comes from the
// parent's secret through KDFa, with a label and context the caller
// chooses. The same parent, template, label and context give the same
// key in any TPM that derives as the reference implementation does.

// maxDerivationBits bounds the key stream (TPM_MAX_DERIVATION_BITS of the
// reference implementation).
const maxDerivationBits = 8192

// derivationStream is the key stream of a derivation: the blocks of
// KDFa(hash, parent secret, label, context, nil, maxDerivationBits) read in
// order. Like the reference, a read that would take the stream past its
// bound counts the block already begun and fails.
type derivationStream struct {
	stream []byte
	block  int
	used   int
}

func newDerivationStream(h crypto.Hash, secret, label, context []byte) *derivationStream {
	// The KDF ends the label with one NUL octet unless it already ends
	// with one; go-tpm's KDFa always appends it.
	if n := len(label); n > 0 && label[n-1] == 0 {
		label = label[:n-1]
	}
	return &derivationStream{stream: gt.KDFa(h, secret, string(label), context, nil, maxDerivationBits), block: h.Size()}
}

func (d *derivationStream) Read(p []byte) (int, error) {
	begun := (d.used + d.block - 1) / d.block * d.block
	if (begun+len(p))*8 > maxDerivationBits {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, d.stream[d.used:])
	d.used += n
	return n, nil
}

// createDerived is TPM2_CreateLoaded under a derivation parent. inPublic
// is a TPMT_TEMPLATE whose unique field is TPMS_DERIVE; inSensitive's data,
// if any, is another TPMS_DERIVE supplying what the template leaves empty.
func (t *TPM) createDerived(parent *object, cmd *createLoadedCmd) (*gt.CreateLoadedResponse, error) {
	auth, data, err := sensitiveCreate(cmd.InSensitive.Buffer, 1)
	if err != nil {
		return nil, err
	}
	tmpl, err := gt.Unmarshal[gt.TPMTTemplate](cmd.InPublic.Buffer)
	if err != nil {
		return nil, rcP(rcValue, 2, "template: %v", err)
	}
	if len(gt.Marshal(tmpl)) != len(cmd.InPublic.Buffer) {
		return nil, rcP(rcSize, 2, "template has trailing bytes")
	}
	p := &gt.TPMTPublic{Type: tmpl.Type, NameAlg: tmpl.NameAlg, ObjectAttributes: tmpl.ObjectAttributes,
		AuthPolicy: tmpl.AuthPolicy, Parameters: tmpl.Parameters}
	h, err := p.NameAlg.Hash()
	if err != nil || !hashSupported(p.NameAlg) {
		return nil, rcP(rcHash, 2, "nameAlg 0x%x", uint16(p.NameAlg))
	}
	if len(trimAuth(auth)) > h.Size() {
		return nil, rcP(rcSize, 1, "userAuth longer than nameAlg digest")
	}
	if p.Type == gt.TPMAlgRSA {
		return nil, rcP(rcType, 2, "RSA keys are not derived")
	}
	a := p.ObjectAttributes
	if a.SensitiveDataOrigin {
		// The reference answers without a parameter number.
		return nil, rcE(rcAttributes, "a derived object has no sensitiveDataOrigin")
	}
	if err := checkAttributes(parent, p, 2); err != nil {
		return nil, err
	}
	label, context := tmpl.Unique.Label.Buffer, tmpl.Unique.Context.Buffer
	if len(data) != 0 {
		d, err := gt.Unmarshal[gt.TPMSDerive](data)
		if err != nil {
			return nil, rcE(rcSize, "inSensitive data is not TPMS_DERIVE: %v", err)
		}
		if len(label) == 0 {
			label = d.Label.Buffer
		}
		if len(context) == 0 {
			context = d.Context.Buffer
		}
	}
	ps, _ := parent.pub.Parameters.KeyedHashDetail()
	xor, _ := ps.Scheme.Details.XOR()
	kh, _ := xor.HashAlg.Hash()
	secret, err := parent.sens.Sensitive.Bits()
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	sens, err := t.generate(p, auth, nil, newDerivationStream(kh, secret.Buffer, label, context), false)
	if err != nil {
		return nil, err
	}
	o := &object{pub: *p, sens: *sens, hierarchy: parent.hierarchy}
	if err := o.finish(parent.qn); err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	handle, err := t.allocObject(o)
	if err != nil {
		return nil, err
	}
	return &gt.CreateLoadedResponse{
		ObjectHandle: gt.TPMHandle(handle),
		OutPublic:    gt.New2B(o.pub),
		Name:         gt.TPM2BName{Buffer: o.name},
	}, nil
}
