package tpm2

import (
	"encoding/binary"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// setAudit sends SetCommandCodeAuditStatus with the owner's empty
// password: no algorithm change, cc added to the list.
func setAudit(tp *TPM, cc gt.TPMCC) uint32 {
	cmd := binary.BigEndian.AppendUint16(nil, stSessions)
	cmd = binary.BigEndian.AppendUint32(cmd, 0)
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(gt.TPMCCSetCommandCodeAuditStatus))
	cmd = binary.BigEndian.AppendUint32(cmd, rhOwner)
	cmd = binary.BigEndian.AppendUint32(cmd, 9)
	cmd = append(cmd, 0x40, 0, 0, 9, 0, 0, 0, 0, 0)
	cmd = binary.BigEndian.AppendUint16(cmd, uint16(gt.TPMAlgNull))
	cmd = binary.BigEndian.AppendUint32(cmd, 1)
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(cc))
	cmd = binary.BigEndian.AppendUint32(cmd, 0)
	binary.BigEndian.PutUint32(cmd[2:], uint32(len(cmd)))
	return binary.BigEndian.Uint32(tp.Process(cmd, 0)[6:])
}

// The audit list and counter are durable state: a host saves them, and a
// host rationing saves learns that an audited command that starts a new
// digest writes (the counter), one that extends a running digest does not.
func TestCommandAuditIsDurable(t *testing.T) {
	tp, tr := newStarted(t)
	if tp.WritesNV(uint32(gt.TPMCCGetRandom)) {
		t.Fatal("GetRandom writes NV before it is audited")
	}
	tp.NVChanged()
	if rc := setAudit(tp, gt.TPMCCGetRandom); rc != rcSuccess {
		t.Fatalf("SetCommandCodeAuditStatus: rc %#x", rc)
	}
	if !tp.NVChanged() {
		t.Fatal("changing the audit list and starting the digest changed nothing durable")
	}
	if tp.WritesNV(uint32(gt.TPMCCGetRandom)) {
		t.Error("GetRandom extending a running digest is said to write NV")
	}
	tp.commandAuditDigest = nil // as after a signed GetCommandAuditDigest
	if !tp.WritesNV(uint32(gt.TPMCCGetRandom)) {
		t.Error("an audited GetRandom that starts a digest is not said to write NV")
	}
	if _, err := (gt.GetRandom{BytesRequested: 8}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	if !tp.NVChanged() {
		t.Error("the audit counter moved without a save")
	}
	counter := tp.ps.AuditCounter
	tp2, err := New(Config{State: save(t, tp)})
	if err != nil {
		t.Fatal(err)
	}
	if !tp2.audited(uint32(gt.TPMCCGetRandom)) || tp2.ps.AuditCounter != counter || counter != 2 {
		t.Errorf("after a restart: GetRandom audited %v, counter %d (was %d, want 2)", tp2.audited(uint32(gt.TPMCCGetRandom)), tp2.ps.AuditCounter, counter)
	}
}
