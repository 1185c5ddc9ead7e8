package tpm2

import (
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// An index is not there for anyone while its hierarchy is disabled: the
// owner's while shEnable is CLEAR, the platform's while phEnableNV is.
func TestNVUnusableWhileHierarchyDisabled(t *testing.T) {
	_, tr := newStarted(t)
	define := func(auth gt.TPMHandle, idx gt.TPMHandle, platform bool) {
		t.Helper()
		pub := gt.TPMSNVPublic{NVIndex: idx, NameAlg: gt.TPMAlgSHA256,
			Attributes: gt.TPMANV{AuthRead: true, AuthWrite: true, PlatformCreate: platform, NT: gt.TPMNTOrdinary}, DataSize: 4}
		if _, err := (gt.NVDefineSpace{AuthHandle: auth, PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
			t.Fatalf("NV_DefineSpace 0x%x: %v", idx, err)
		}
		name := nvName(t, tr, idx)
		if _, err := (gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: idx, Name: name, Auth: gt.PasswordAuth(nil)},
			NVIndex: gt.NamedHandle{Handle: idx, Name: name}, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte("data")}}).Execute(tr); err != nil {
			t.Fatalf("NV_Write 0x%x: %v", idx, err)
		}
	}
	const owner, platform = 0x01500040, 0x01400040
	define(gt.TPMRHOwner, owner, false)
	define(gt.TPMRHPlatform, platform, true)
	// Raw commands: the index's Name cannot be read to fill a go-tpm
	// handle once the index is hidden.
	read := func(idx uint32) uint32 {
		rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCNVRead), []uint32{idx, idx}, passwordAuth(nil), append(u16(4), u16(0)...)))
		return responseCode(rsp)
	}
	readPublic := func(idx uint32) uint32 {
		rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCNVReadPublic), []uint32{idx}, nil, nil))
		return responseCode(rsp)
	}
	hidden := rcHandle | 0x100 // handle 1
	hierarchyControl(t, tr, rhOwner)
	if rc := read(owner); rc != hidden {
		t.Errorf("NV_Read of an owner index with the owner hierarchy disabled: 0x%x, want 0x%x", rc, hidden)
	}
	if rc := readPublic(owner); rc != hidden {
		t.Errorf("NV_ReadPublic of an owner index with the owner hierarchy disabled: 0x%x, want 0x%x", rc, hidden)
	}
	if rc := read(platform); rc != rcSuccess {
		t.Errorf("NV_Read of a platform index with the owner hierarchy disabled: 0x%x", rc)
	}
	hierarchyControl(t, tr, rhPlatformNV)
	if rc := read(platform); rc != hidden {
		t.Errorf("NV_Read of a platform index with phEnableNV clear: 0x%x, want 0x%x", rc, hidden)
	}
}
