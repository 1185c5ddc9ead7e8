package tpm2

import (
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

func TestCommandsCapabilityMatchesTotal(t *testing.T) {
	_, tr := newStarted(t)
	p, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTTotalCommands), PropertyCount: 1}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	props, _ := p.CapabilityData.Data.TPMProperties()
	total := props.TPMProperty[0].Value
	// The kernel asks for TOTAL_COMMANDS entries from TPM_CC_FIRST.
	c, err := (gt.GetCapability{Capability: gt.TPMCapCommands, Property: 0x11F, PropertyCount: total}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	cmds, _ := c.CapabilityData.Data.Command()
	if uint32(len(cmds.CommandAttributes)) != total || bool(c.MoreData) {
		t.Fatalf("COMMANDS lists %d (moreData %v), TOTAL_COMMANDS %d", len(cmds.CommandAttributes), c.MoreData, total)
	}
	// Paging: two at a time covers the same set.
	n, prop := 0, uint32(0x11F)
	for {
		c, err := (gt.GetCapability{Capability: gt.TPMCapCommands, Property: prop, PropertyCount: 2}).Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		cmds, _ := c.CapabilityData.Data.Command()
		n += len(cmds.CommandAttributes)
		if !c.MoreData {
			break
		}
		prop = uint32(cmds.CommandAttributes[len(cmds.CommandAttributes)-1].CommandIndex) + 1
	}
	if uint32(n) != total {
		t.Fatalf("paged COMMANDS gave %d, want %d", n, total)
	}
}
