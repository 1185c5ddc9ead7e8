package tpmtis

import (
	"errors"
	"fmt"
	"strconv"
)

// LocalityPages is how many 4 KiB register pages a TIS decodes from its
// base: one per locality (PTP §6.5.2).
const LocalityPages = 5

// CheckBase checks a `tpmiomem=` value: a page-aligned base whose five
// locality pages lie in 0xC0000000-0xFFFFFFFF, the range the PVH board
// maps uncached and the only one the driver works in.
func CheckBase(s string) error {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("not a number (want e.g. 0xfed40000): %v", err)
	}
	if v%0x1000 != 0 {
		return errors.New("not page aligned")
	}
	if v < 0xC0000000 || v+LocalityPages*0x1000 > 1<<32 {
		return errors.New("the five locality pages must lie in 0xc0000000-0xffffffff")
	}
	return nil
}

// CheckIRQ checks a `tpmirq=` value: the driver polls and takes no TPM
// interrupts, so only 0 is accepted.
func CheckIRQ(s string) error {
	if s != "0" {
		return errors.New("only tpmirq=0 (polling) is supported: this image takes no TPM interrupts")
	}
	return nil
}
