package tpm2

import (
	"crypto"
	"encoding/binary"
	"slices"

	gt "github.com/google/go-tpm/tpm2"
)

// Command audit, Part 1 §32.2–32.4 and Part 3 §18.6, §21.2: the TPM keeps
// a digest of every audited command that succeeded, auditDigest :=
// H(auditDigest || cpHash || rpHash) in the audit hash algorithm, which
// GetCommandAuditDigest signs with the audit counter and the list of
// audited commands. The list, the algorithm and the counter are durable;
// the digest is volatile. SetCommandCodeAuditStatus is always audited.

// audited reports whether command cc is in the audit list.
func (t *TPM) audited(cc uint32) bool {
	if cc == uint32(gt.TPMCCSetCommandCodeAuditStatus) {
		return true
	}
	_, ok := slices.BinarySearch(t.ps.AuditCommands, cc)
	return ok
}

// auditAlg is the audit hash algorithm; a TPM that never set one audits
// with SHA-256.
func (t *TPM) auditAlg() (gt.TPMIAlgHash, crypto.Hash) {
	a := gt.TPMIAlgHash(t.ps.AuditAlg)
	if a == 0 {
		a = gt.TPMAlgSHA256
	}
	h, _ := a.Hash()
	return a, h
}

// startsAudit reports whether command cc, if it succeeds, starts a new
// audit digest and so increments the durable audit counter.
func (t *TPM) startsAudit(cc uint32) bool {
	return t.audited(cc) && t.commandAuditDigest == nil && !t.auditAlgChanged
}

// commandAudit extends the audit digest with a command that succeeded;
// params are its response parameters as sent.
func (t *TPM) commandAudit(c *call, params []byte) {
	if !t.audited(c.def.cc) {
		return
	}
	if t.auditAlgChanged {
		// The command that changed the algorithm is not audited: the
		// digest starts with the next one (Part 3 §21.2).
		t.auditAlgChanged = false
		return
	}
	_, h := t.auditAlg()
	if t.commandAuditDigest == nil {
		t.commandAuditDigest = make([]byte, h.Size())
		t.ps.AuditCounter++
		t.nvCheck = true
	}
	rp := h.New()
	rp.Write(u32(rcSuccess))
	rp.Write(u32(c.def.cc))
	rp.Write(params)
	d := h.New()
	d.Write(t.commandAuditDigest)
	d.Write(c.cpHash(h))
	d.Write(rp.Sum(nil))
	t.commandAuditDigest = d.Sum(nil)
}

// setCommandCodeAuditStatus is TPM2_SetCommandCodeAuditStatus, Part 3
// §21.2: either a new audit algorithm (which restarts the digest) or
// changes to the list, not both.
func (t *TPM) setCommandCodeAuditStatus(c *call, cmd *setCommandCodeAuditStatusCmd) (*emptyResponse, error) {
	if c.handles[0] != rhOwner && c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "SetCommandCodeAuditStatus needs owner or platform")
	}
	if cmd.AuditAlg != gt.TPMAlgNull {
		if !hashSupported(cmd.AuditAlg) {
			return nil, rcP(rcHash, 1, "audit algorithm 0x%x", uint16(cmd.AuditAlg))
		}
		if cur, _ := t.auditAlg(); cmd.AuditAlg != cur {
			if len(cmd.SetList.CommandCodes) != 0 || len(cmd.ClearList.CommandCodes) != 0 {
				return nil, rcP(rcValue, 1, "a new audit algorithm and list changes in one command")
			}
			t.ps.AuditAlg = uint16(cmd.AuditAlg)
			t.commandAuditDigest, t.auditAlgChanged = nil, true
			return nil, nil
		}
	}
	list := slices.Clone(t.ps.AuditCommands)
	for _, cc := range cmd.SetList.CommandCodes {
		if _, ok := t.commands[uint32(cc)]; ok && !slices.Contains(list, uint32(cc)) && cc != gt.TPMCCSetCommandCodeAuditStatus {
			list = append(list, uint32(cc))
		}
	}
	for _, cc := range cmd.ClearList.CommandCodes {
		list = slices.DeleteFunc(list, func(x uint32) bool { return x == uint32(cc) })
	}
	slices.Sort(list)
	t.ps.AuditCommands = list
	return nil, nil
}

// auditCommandList is TPM_CAP_AUDIT_COMMANDS from property on.
func (t *TPM) auditCommandList(property uint32) []gt.TPMCC {
	all := append([]uint32{uint32(gt.TPMCCSetCommandCodeAuditStatus)}, t.ps.AuditCommands...)
	slices.Sort(all)
	var out []gt.TPMCC
	for _, cc := range slices.Compact(all) {
		if cc >= property {
			out = append(out, gt.TPMCC(cc))
		}
	}
	return out
}

// getCommandAuditDigest is TPM2_GetCommandAuditDigest, Part 3 §18.6. A
// signed report ends the digest: the next audited command starts a new
// one under the next counter value.
func (t *TPM) getCommandAuditDigest(c *call, cmd *getCommandAuditDigestCmd) (*gt.GetSessionAuditDigestResponse, error) {
	if c.handles[0] != rhEndorsement {
		return nil, rcH(rcValue, 1, "privacy admin must be the endorsement hierarchy")
	}
	alg, h := t.auditAlg()
	cd := h.New()
	for _, cc := range t.auditCommandList(0) {
		cd.Write(u32(uint32(cc)))
	}
	// TPMS_COMMAND_AUDIT_INFO, Part 2 §10.12.5.
	body := binary.BigEndian.AppendUint64(nil, t.ps.AuditCounter)
	body = append(body, u16(uint16(alg))...)
	body = append(body, sized(t.commandAuditDigest)...)
	body = append(body, sized(cd.Sum(nil))...)
	info, sig, err := t.attest(c.handles[1], 2, stAttestCommandAudit, cmd.QualifyingData.Buffer, &cmd.InScheme, body)
	if err != nil {
		return nil, err
	}
	if c.handles[1] != rhNull {
		t.commandAuditDigest = nil
	}
	return &gt.GetSessionAuditDigestResponse{AuditInfo: info, Signature: sig}, nil
}
