//go:build tamago

package domain

import "github.com/xenvtpm/xenvtpm/board/xen/pvh"

// LogMemory logs how the Go runtime uses the domain's RAM (memoryLine): a
// domain logs it as it powers off, so its console tells an administrator
// how much of memory= its life needed.
func (d *Domain) LogMemory() {
	d.Log.Infof("%s", readMemoryLine(pvh.RuntimeRAM()))
}
