// Package measure gives a PV or PVH guest a measured boot from dom0, as
// pv-grub gave its guests (xen-vtpm(7), "Integration with pv-grub"):
// before the guest is created, the kernel image is extended into PCR 4,
// then the command line and the initial ramdisk into PCR 5, in every PCR
// bank the guest's vTPM has (each bank gets the digest of the data with
// its own hash, as TPM2_PCR_Event would do for short data). The vTPM is
// reset first (a platform reset, vtpmdomain/platform) and started with
// TPM2_Startup(CLEAR), so the PCRs a guest reads depend only on what it
// was booted with.
package measure

import (
	"crypto"
	_ "crypto/sha1" // the banks' hashes
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
)

// PCRs pv-grub used.
const (
	PCRKernel = 4
	PCRConfig = 5
)

// Component is one thing measured.
type Component struct {
	PCR  int
	What string
	Data []byte
}

// Boot lists a guest's components in the order they are extended: kernel
// (PCR 4), command line (PCR 5, the string's bytes without a terminator),
// ramdisk (PCR 5, if any).
func Boot(kernel []byte, cmdline string, ramdisk []byte) []Component {
	c := []Component{{PCRKernel, "kernel", kernel}, {PCRConfig, "command line", []byte(cmdline)}}
	if ramdisk != nil {
		c = append(c, Component{PCRConfig, "ramdisk", ramdisk})
	}
	return c
}

// Event is one extend as done: the PCR and the digest per bank.
type Event struct {
	PCR     int
	What    string
	Digests map[tpm2.TPMAlgID][]byte
}

// Reset resets the vTPM (platform reset) and starts it with
// TPM2_Startup(CLEAR).
func Reset(tpm transport.TPM) error {
	rsp, err := tpm.Send(platform.Marshal(platform.CCPlatformReset))
	if err == nil {
		err = platform.Check(platform.CCPlatformReset, rsp)
	}
	if err != nil {
		return fmt.Errorf("measure: resetting the vTPM: %w", err)
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(tpm); err != nil {
		return fmt.Errorf("measure: TPM2_Startup after the reset: %w", err)
	}
	return nil
}

// Banks lists the PCR banks the TPM has allocated.
func Banks(tpm transport.TPM) ([]tpm2.TPMAlgID, error) {
	r, err := (tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, Property: 0, PropertyCount: 16}).Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("measure: reading the PCR banks: %w", err)
	}
	sel, err := r.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("measure: reading the PCR banks: %w", err)
	}
	var banks []tpm2.TPMAlgID
	for _, s := range sel.PCRSelections {
		for _, b := range s.PCRSelect {
			if b != 0 {
				banks = append(banks, s.Hash)
				break
			}
		}
	}
	if len(banks) == 0 {
		return nil, errors.New("measure: the vTPM has no PCR bank allocated")
	}
	return banks, nil
}

// Digests returns data's digest in each bank.
func Digests(banks []tpm2.TPMAlgID, data []byte) (map[tpm2.TPMAlgID][]byte, error) {
	d := map[tpm2.TPMAlgID][]byte{}
	for _, alg := range banks {
		h, err := alg.Hash()
		if err != nil || !h.Available() {
			return nil, fmt.Errorf("measure: no hash for PCR bank %v", alg)
		}
		d[alg] = hashOf(h, data)
	}
	return d, nil
}

func hashOf(h crypto.Hash, data []byte) []byte {
	w := h.New()
	w.Write(data)
	return w.Sum(nil)
}

// Extend extends each component into every allocated bank, in order, and
// returns what it did.
func Extend(tpm transport.TPM, comps []Component) ([]Event, error) {
	banks, err := Banks(tpm)
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, c := range comps {
		d, err := Digests(banks, c.Data)
		if err != nil {
			return events, err
		}
		var list tpm2.TPMLDigestValues
		for _, alg := range banks {
			list.Digests = append(list.Digests, tpm2.TPMTHA{HashAlg: alg, Digest: d[alg]})
		}
		if _, err := (tpm2.PCRExtend{PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(c.PCR), Auth: tpm2.PasswordAuth(nil)},
			Digests: list}).Execute(tpm); err != nil {
			return events, fmt.Errorf("measure: extending the %s into PCR %d: %w", c.What, c.PCR, err)
		}
		events = append(events, Event{PCR: c.PCR, What: c.What, Digests: d})
	}
	return events, nil
}
