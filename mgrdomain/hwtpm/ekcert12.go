package hwtpm

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpmutil"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
)

// TPM 1.2 ordinals and codes of the EK certificate's read (TPM 1.2 Part
// 2, 17 and 16).
const (
	ord12NVReadValue = 0x000000CF // TPM_ORD_NV_ReadValue
	rc12BadIndex     = 0x02       // TPM_BADINDEX: no such NV index
	rc12AuthConflict = 0x3B       // TPM_AUTH_CONFLICT: the index needs authorization
	nvReadChunk12    = 512        // a read every TPM 1.2 input buffer takes
)

// EKCert12 returns the EK certificate the manufacturer left in NV index
// TPM_NV_INDEX_EKCert (ekcert.NVIndexEKCert12, in the PC Client framing),
// nil when the TPM has none there. It reads with TPM_NV_ReadValue (Part
// 3, 20.4), without authorization where the index allows it, else
// authorized by the owner (an index of TPM_NV_PER_OWNERREAD, as swtpm's);
// costs: one read of the framing, then one per 512 bytes, and with the
// owner's authorization a TPM_OIAP.
func (t *TPM12) EKCert12() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var owner *authSession
	defer func() {
		if owner != nil {
			t.flush12(owner.handle, rt12Auth)
		}
	}()
	read := func(off, n int) ([]byte, error) {
		const name = "TPM_NV_ReadValue(EK certificate)"
		p := binary.BigEndian.AppendUint32(nil, ekcert.NVIndexEKCert12)
		p = binary.BigEndian.AppendUint32(p, uint32(off))
		p = binary.BigEndian.AppendUint32(p, uint32(n))
		var out []byte
		var err error
		if owner == nil {
			out, err = t.run12(name, tag12RquCommand, ord12NVReadValue, tpmutil.RawBytes(p))
			if isRC12(err, rc12AuthConflict) {
				if owner, err = t.oiap(t.cfg.OwnerAuth.TPM12()); err != nil {
					return nil, err
				}
			}
		}
		if owner != nil {
			if out, err = t.authCmd(name, ord12NVReadValue, nil, p, 0, use12{s: owner, cont: true}); err != nil {
				owner = nil // a failed command ends the session
				return nil, fmt.Errorf("%w%s", err, lockoutHint(err))
			}
		}
		if err != nil {
			return nil, err
		}
		if len(out) < 4 || int(binary.BigEndian.Uint32(out)) != len(out)-4 || len(out)-4 != n {
			return nil, fmt.Errorf("hwtpm: TPM_NV_ReadValue(EK certificate): a malformed answer of %d bytes for %d", len(out), n)
		}
		return out[4:], nil
	}
	data, err := read(0, ekcert.Frame12Header)
	if isRC12(err, rc12BadIndex) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	size, err := ekcert.Frame12Size(data)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: NV index %#x: %w", ekcert.NVIndexEKCert12, err)
	}
	for len(data) < size {
		chunk, err := read(len(data), min(nvReadChunk12, size-len(data)))
		if err != nil {
			return nil, err
		}
		data = append(data, chunk...)
	}
	der, err := ekcert.Unframe12(data)
	if err != nil {
		return nil, err
	}
	return slices.Clone(der), nil
}
