// Package measure gives a PV or PVH guest a measured boot from dom0, as
// pv-grub gave its guests (xen-vtpm(7), "Integration with pv-grub"):
// before the guest is created, the kernel image is extended into PCR 4,
// then the command line and the initial ramdisk into PCR 5, in every PCR
// bank the guest's vTPM has (each bank gets the digest of the data with
// its own hash, as TPM2_PCR_Event would do for short data). The vTPM is
// reset first (a platform reset, vtpmdomain/platform) and started with
// TPM2_Startup(CLEAR), so the PCRs a guest reads depend only on what it
// was booted with.
//
// A TPM 1.2 vTPM (tpm=1.2) is measured as pv-grub measured it
// (stubdom/grub/kexec.c): after TPM_Startup(ST_CLEAR), three
// TPM_Extend commands carrying SHA-1 digests: the kernel into PCR 4, the
// command line and then the initial ramdisk into PCR 5, the ramdisk's
// digest extended even when there is none (SHA-1 of nothing). Reset tells
// the families apart by how the TPM answers TPM2_Startup.
package measure

import (
	"crypto"
	"crypto/sha1" // SHA-1 bank, and TPM 1.2's digests
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/binary"
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
	// PCRValue is the PCR's value after the extend (TPM 1.2 only: its
	// TPM_Extend returns it).
	PCRValue []byte
}

// Family is the TPM family of a vTPM.
type Family int

const (
	Family20 Family = iota
	Family12
)

func (f Family) String() string {
	if f == Family12 {
		return "1.2"
	}
	return "2.0"
}

// TPM 1.2 wire constants (TPM Main Part 2 §6, §17, §16).
const (
	tagRquCommand12 = 0x00C1 // TPM_TAG_RQU_COMMAND
	tagRspCommand12 = 0x00C4 // TPM_TAG_RSP_COMMAND
	ordExtend12     = 0x14   // TPM_ORD_Extend
	ordStartup12    = 0x99   // TPM_ORD_Startup
	stClear12       = 0x0001 // TPM_ST_CLEAR
	tagNoSessions20 = 0x8001 // TPM_ST_NO_SESSIONS
	ccStartup20     = 0x0144 // TPM_CC_Startup
)

// Reset resets the vTPM (platform reset) and starts it with Startup(CLEAR)
// of its family, which it returns. A TPM 2.0 answers TPM2_Startup with a
// TPM_ST_NO_SESSIONS response; a TPM 1.2 answers any command with a TPM
// 1.2 tag (TPM_TAG_RSP_COMMAND, here with TPM_BADTAG), and is then started
// with TPM_Startup(ST_CLEAR).
func Reset(tpm transport.TPM) (Family, error) {
	rsp, err := tpm.Send(platform.Marshal(platform.CCPlatformReset))
	if err == nil {
		err = platform.Check(platform.CCPlatformReset, rsp)
	}
	if err != nil {
		return 0, fmt.Errorf("measure: resetting the vTPM: %w", err)
	}
	cmd := binary.BigEndian.AppendUint16(nil, tagNoSessions20)
	cmd = binary.BigEndian.AppendUint32(cmd, 12)
	cmd = binary.BigEndian.AppendUint32(cmd, ccStartup20)
	cmd = binary.BigEndian.AppendUint16(cmd, uint16(tpm2.TPMSUClear))
	if rsp, err = tpm.Send(cmd); err != nil {
		return 0, fmt.Errorf("measure: TPM2_Startup after the reset: %w", err)
	}
	if len(rsp) >= 10 && binary.BigEndian.Uint16(rsp) == tagRspCommand12 {
		if _, err := send12(tpm, ordStartup12, binary.BigEndian.AppendUint16(nil, stClear12), 0); err != nil {
			return Family12, fmt.Errorf("measure: TPM_Startup(ST_CLEAR) after the reset: %w", err)
		}
		return Family12, nil
	}
	if len(rsp) < 10 || binary.BigEndian.Uint16(rsp) != tagNoSessions20 {
		return 0, fmt.Errorf("measure: TPM2_Startup after the reset: malformed response %x", rsp)
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		return Family20, fmt.Errorf("measure: TPM2_Startup after the reset: %w", tpm2.TPMRC(rc))
	}
	return Family20, nil
}

// send12 sends a TPM 1.2 command without authorization and returns its
// output parameters, which must be want bytes long.
func send12(tpm transport.TPM, ord uint32, params []byte, want int) ([]byte, error) {
	cmd := binary.BigEndian.AppendUint16(nil, tagRquCommand12)
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(10+len(params)))
	cmd = binary.BigEndian.AppendUint32(cmd, ord)
	cmd = append(cmd, params...)
	rsp, err := tpm.Send(cmd)
	if err != nil {
		return nil, err
	}
	if len(rsp) < 10 || binary.BigEndian.Uint16(rsp) != tagRspCommand12 || binary.BigEndian.Uint32(rsp[2:]) != uint32(len(rsp)) {
		return nil, fmt.Errorf("malformed TPM 1.2 response %x", rsp)
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		return nil, fmt.Errorf("TPM 1.2 return code %#x", rc)
	}
	if len(rsp) != 10+want {
		return nil, fmt.Errorf("TPM 1.2 response of %d bytes, want %d", len(rsp), 10+want)
	}
	return rsp[10:], nil
}

// BootPVGrub lists a guest's components as pv-grub extended them: kernel
// (PCR 4), command line and ramdisk (PCR 5), the ramdisk always.
func BootPVGrub(kernel []byte, cmdline string, ramdisk []byte) []Component {
	if ramdisk == nil {
		ramdisk = []byte{}
	}
	return Boot(kernel, cmdline, ramdisk)
}

// Extend12 extends each component's SHA-1 digest into a TPM 1.2 with
// TPM_Extend, in order, and returns what it did. Each Event carries the
// SHA-1 digest extended and the PCR value the TPM returned.
func Extend12(tpm transport.TPM, comps []Component) ([]Event, error) {
	var events []Event
	for _, c := range comps {
		d := sha1.Sum(c.Data)
		params := binary.BigEndian.AppendUint32(nil, uint32(c.PCR))
		out, err := send12(tpm, ordExtend12, append(params, d[:]...), sha1.Size)
		if err != nil {
			return events, fmt.Errorf("measure: extending the %s into PCR %d: %w", c.What, c.PCR, err)
		}
		events = append(events, Event{PCR: c.PCR, What: c.What, Digests: map[tpm2.TPMAlgID][]byte{tpm2.TPMAlgSHA1: d[:]}, PCRValue: out})
	}
	return events, nil
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
