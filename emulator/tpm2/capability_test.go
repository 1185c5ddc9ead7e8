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

// TPM properties page as the specification says (Part 3 §30.2): pages of
// a few, from any property on, cover what one large request lists, each
// but the last with moreData; a count of 0 lists nothing but says there
// is more.
func TestTPMPropertiesPaging(t *testing.T) {
	_, tr := newStarted(t)
	get := func(from, count uint32) ([]gt.TPMSTaggedProperty, bool) {
		t.Helper()
		r, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: from, PropertyCount: count}).Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		l, err := r.CapabilityData.Data.TPMProperties()
		if err != nil {
			t.Fatal(err)
		}
		return l.TPMProperty, bool(r.MoreData)
	}
	all, more := get(0x100, 1000)
	if more || len(all) < 60 || all[0].Property != 0x100 {
		t.Fatalf("all properties: %d from %#x, moreData %v", len(all), all[0].Property, more)
	}
	for _, size := range []uint32{1, 3, 8} {
		var paged []gt.TPMSTaggedProperty
		from := uint32(0x100)
		for {
			page, more := get(from, size)
			if uint32(len(page)) > size || (more && uint32(len(page)) != size) {
				t.Fatalf("page of %d from %#x: %d properties, moreData %v", size, from, len(page), more)
			}
			paged = append(paged, page...)
			if !more {
				break
			}
			from = uint32(page[len(page)-1].Property) + 1
		}
		if len(paged) != len(all) {
			t.Fatalf("pages of %d: %d properties, want %d", size, len(paged), len(all))
		}
		for i := range all {
			if paged[i].Property != all[i].Property {
				t.Fatalf("pages of %d: property %d is %#x, want %#x", size, i, paged[i].Property, all[i].Property)
			}
		}
	}
	if page, more := get(0x200, 0); len(page) != 0 || !more {
		t.Fatalf("count 0: %d properties, moreData %v; want none and more", len(page), more)
	}
	if page, more := get(0x214, 5); len(page) != 1 || more {
		t.Fatalf("from the last property: %d, moreData %v; want it alone", len(page), more)
	}
}
