package conformance

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// tpm is one side of the comparison: it runs a command at a locality,
// and power-cycles (_TPM_Init).
type tpm interface {
	send(locality uint8, cmd []byte) ([]byte, error)
	init() error
}

type engine struct{ t *tpm12.TPM }

func (e engine) send(l uint8, cmd []byte) ([]byte, error) { return e.t.Process(cmd, l), nil }
func (e engine) init() error                              { e.t.Reset(); return nil }

type reference struct {
	p   *swtpmtest.Proc
	loc uint8
}

func (r *reference) send(l uint8, cmd []byte) ([]byte, error) {
	if l != r.loc {
		if err := r.p.SetLocality(l); err != nil {
			return nil, err
		}
		r.loc = l
	}
	return r.p.Send(cmd)
}

func (r *reference) init() error { return r.p.Init() }

// Ordinals and constants of TPM Main Part 2, spelled out: the test
// speaks the wire format, not the engine's names.
const (
	ordOIAP, ordOSAP, ordExtend, ordPCRRead   = 0x0A, 0x0B, 0x14, 0x15
	ordGetRandom, ordSelfTestFull             = 0x46, 0x50
	ordContinueSelfTest, ordGetTestResult     = 0x53, 0x54
	ordGetCapability, ordReadPubek            = 0x65, 0x7C
	ordCreateEndorsementKeyPair, ordSaveState = 0x78, 0x98
	ordStartup, ordFlushSpecific, ordPCRReset = 0x99, 0xBA, 0xC8
)

func cmd(tag uint16, ord uint32, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tag)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, ord)
	for _, p := range parts {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// do sends a TPM_TAG_RQU_COMMAND command at locality 0 and returns the
// response code and parameters, or the transport error as text.
func do(tr tpm, ord uint32, parts ...[]byte) (uint32, []byte, string) {
	return doAt(tr, 0, 0xC1, ord, parts...)
}

func doAt(tr tpm, loc uint8, tag uint16, ord uint32, parts ...[]byte) (uint32, []byte, string) {
	rsp, err := tr.send(loc, cmd(tag, ord, parts...))
	if err != nil {
		return 0, nil, "transport: " + err.Error()
	}
	if len(rsp) < 10 || binary.BigEndian.Uint32(rsp[2:]) != uint32(len(rsp)) {
		return 0, nil, fmt.Sprintf("malformed response %x", rsp)
	}
	return binary.BigEndian.Uint32(rsp[6:]), rsp[10:], ""
}

// rcOnly reports the response code.
func rcOnly(ord uint32, parts ...[]byte) func(tpm) string {
	return func(tr tpm) string {
		rc, _, e := do(tr, ord, parts...)
		return e + fmt.Sprintf("rc=%#x", rc)
	}
}

// full reports the response code and the parameters.
func full(ord uint32, parts ...[]byte) func(tpm) string {
	return func(tr tpm) string {
		rc, out, e := do(tr, ord, parts...)
		return e + fmt.Sprintf("rc=%#x %x", rc, out)
	}
}

// shape reports the response code and the parameters' size.
func shape(ord uint32, parts ...[]byte) func(tpm) string {
	return func(tr tpm) string {
		rc, out, e := do(tr, ord, parts...)
		return e + fmt.Sprintf("rc=%#x len=%d", rc, len(out))
	}
}

func capArgs(area uint32, sub []byte) [][]byte {
	return [][]byte{u32(area), u32(uint32(len(sub))), sub}
}

type diffStep struct {
	name string
	run  func(tr tpm) string
}

var digest1 = bytes.Repeat([]byte{0xA5}, 20)

// powerCycle is a step that runs _TPM_Init.
var powerCycle = diffStep{"_TPM_Init", func(tr tpm) string {
	if err := tr.init(); err != nil {
		return err.Error()
	}
	return "ok"
}}

// startupSteps run before and at TPM_Startup. A Startup that fails
// still ends the post-init state (Part 3 §3.2 action 6).
func startupSteps() []diffStep {
	return []diffStep{
		{"PCRRead before Startup", rcOnly(ordPCRRead, u32(0))},
		{"GetCapability before Startup", rcOnly(ordGetCapability, capArgs(6, nil)...)},
		{"Extend before Startup", rcOnly(ordExtend, u32(0), digest1)},
		{"Startup bad type", rcOnly(ordStartup, u16(7))},
		{"Startup CLEAR after a failed Startup", rcOnly(ordStartup, u16(1))},
		{"PCRRead after a failed Startup", rcOnly(ordPCRRead, u32(0))},
		powerCycle,
		{"Startup short", rcOnly(ordStartup)},
		{"Startup CLEAR after a short Startup", rcOnly(ordStartup, u16(1))},
		powerCycle,
		{"Startup with an AUTH1 tag", func(tr tpm) string {
			rc, _, e := doAt(tr, 0, 0xC2, ordStartup, u16(1), make([]byte, 45))
			return e + fmt.Sprintf("rc=%#x", rc)
		}},
		powerCycle,
		{"Startup CLEAR", rcOnly(ordStartup, u16(1))},
		{"Startup again", rcOnly(ordStartup, u16(1))},
	}
}

// resumeSteps compare SaveState and the three startup types: what
// ST_STATE restores, what it does without a saved state, and what
// ST_DEACTIVATED leaves working.
func resumeSteps() []diffStep {
	d2 := bytes.Repeat([]byte{0x3C}, 20)
	return []diffStep{
		{"Extend 3", full(ordExtend, u32(3), d2)},
		{"Extend 16", full(ordExtend, u32(16), d2)},
		{"SaveState", rcOnly(ordSaveState)},
		powerCycle,
		{"Startup STATE", rcOnly(ordStartup, u16(2))},
		{"PCRRead 3 after resume", full(ordPCRRead, u32(3))},
		{"PCRRead 16 after resume", full(ordPCRRead, u32(16))},
		{"PCRRead 10 after resume", full(ordPCRRead, u32(10))},
		powerCycle,
		{"Startup STATE without saved state", rcOnly(ordStartup, u16(2))},
		{"PCRRead in failure mode", rcOnly(ordPCRRead, u32(3))},
		{"GetCapability VERSION_VAL in failure mode", shape(ordGetCapability, capArgs(0x1A, nil)...)},
		{"GetCapability PCR count in failure mode", rcOnly(ordGetCapability, capArgs(5, u32(0x101))...)},
		{"GetTestResult in failure mode", rcOnly(ordGetTestResult)},
		powerCycle,
		{"Startup DEACTIVATED", rcOnly(ordStartup, u16(3))},
		{"PCRRead while deactivated", rcOnly(ordPCRRead, u32(3))},
		{"Extend while deactivated", full(ordExtend, u32(3), d2)},
		{"GetRandom while deactivated", rcOnly(ordGetRandom, u32(8))},
		{"ReadPubek while deactivated", rcOnly(ordReadPubek, d2)},
		{"OIAP while deactivated", shape(ordOIAP)},
		{"CAP_FLAG volatile while deactivated", full(ordGetCapability, capArgs(4, u32(0x109))...)},
		powerCycle,
		{"Startup CLEAR after deactivated", rcOnly(ordStartup, u16(1))},
		{"PCRRead 3 after Startup CLEAR", full(ordPCRRead, u32(3))},
		{"SaveState before an unknown ordinal", rcOnly(ordSaveState)},
		{"unknown ordinal after SaveState", rcOnly(0x1234)},
		powerCycle,
		{"Startup STATE after the saved state was discarded", rcOnly(ordStartup, u16(2))},
		powerCycle,
		{"SaveState twice", func(tr tpm) string {
			rc0, _, _ := do(tr, ordStartup, u16(1))
			rc1, _, _ := do(tr, ordSaveState)
			rc2, _, _ := do(tr, ordSaveState)
			return fmt.Sprintf("rc=%#x %#x %#x", rc0, rc1, rc2)
		}},
		powerCycle,
		{"Startup STATE after SaveState twice", rcOnly(ordStartup, u16(2))},
	}
}

// capabilitySteps compare capability values where both TPMs must agree
// and shapes where the value is the implementation's (manufacturer,
// timeouts, durations, firmware revision).
func capabilitySteps() []diffStep {
	prop := func(p uint32) [][]byte { return capArgs(5, u32(p)) }
	steps := []diffStep{
		{"CAP_PROPERTY PCR", full(ordGetCapability, prop(0x101)...)},
		{"CAP_PROPERTY MANUFACTURER shape", shape(ordGetCapability, prop(0x103)...)},
		{"CAP_PROPERTY OWNER", full(ordGetCapability, prop(0x111)...)},
		{"CAP_PROPERTY TIS_TIMEOUT shape", shape(ordGetCapability, prop(0x115)...)},
		{"CAP_PROPERTY DURATION shape", shape(ordGetCapability, prop(0x120)...)},
		{"CAP_PROPERTY INPUT_BUFFER shape", shape(ordGetCapability, prop(0x124)...)},
		{"CAP_PROPERTY KEYS shape", shape(ordGetCapability, prop(0x104)...)},
		{"CAP_PROPERTY unknown", rcOnly(ordGetCapability, prop(0x1FF)...)},
		{"CAP_PROPERTY 2-byte subCap", rcOnly(ordGetCapability, capArgs(5, u16(0x101))...)},
		{"CAP unknown area", rcOnly(ordGetCapability, capArgs(0x99, nil)...)},
		{"CAP_VERSION", full(ordGetCapability, capArgs(6, nil)...)},
		{"CAP_VERSION_VAL layout", func(tr tpm) string {
			rc, out, e := do(tr, ordGetCapability, capArgs(0x1A, nil)...)
			if len(out) < 4+15 {
				return e + fmt.Sprintf("rc=%#x %x", rc, out)
			}
			v := out[4:]
			// tag, major.minor, specLevel, errataRev; not the firmware
			// revision or the vendor.
			return fmt.Sprintf("rc=%#x len=%d tag=%x ver=%x spec=%x errata=%x vsize=%x", rc, len(v), v[0:2], v[2:4], v[6:8], v[8], v[13:15])
		}},
		{"CAP_FLAG permanent layout", func(tr tpm) string {
			rc, out, e := do(tr, ordGetCapability, capArgs(4, u32(0x108))...)
			if len(out) < 4+6 {
				return e + fmt.Sprintf("rc=%#x %x", rc, out)
			}
			// size, tag, disable, ownership, deactivated, readPubek.
			return fmt.Sprintf("rc=%#x %x", rc, out[:10])
		}},
		{"CAP_FLAG volatile", full(ordGetCapability, capArgs(4, u32(0x109))...)},
		{"CAP_FLAG unknown", rcOnly(ordGetCapability, capArgs(4, u32(0x10A))...)},
		{"CAP_KEY_HANDLE", full(ordGetCapability, capArgs(7, nil)...)},
		{"CAP_ALG RSA", full(ordGetCapability, capArgs(2, u32(1))...)},
		{"CAP_ALG 0x99", full(ordGetCapability, capArgs(2, u32(0x99))...)},
		{"CAP_PID OIAP", full(ordGetCapability, capArgs(3, u16(1))...)},
		{"CAP_PID OSAP", full(ordGetCapability, capArgs(3, u16(2))...)},
		{"CAP_ORD unknown 0x1234", full(ordGetCapability, capArgs(1, u32(0x1234))...)},
	}
	for _, o := range []uint32{ordOIAP, ordOSAP, ordExtend, ordPCRRead, ordGetRandom, ordSelfTestFull,
		ordContinueSelfTest, ordGetTestResult, ordGetCapability, ordReadPubek, ordSaveState,
		ordStartup, ordFlushSpecific, ordPCRReset} {
		steps = append(steps, diffStep{fmt.Sprintf("CAP_ORD %#x", o), full(ordGetCapability, capArgs(1, u32(o))...)})
	}
	return steps
}

// pcrSteps compare PCR values and the PC Client locality rules.
func pcrSteps() []diffStep {
	var steps []diffStep
	for i := uint32(0); i < 24; i++ {
		steps = append(steps, diffStep{fmt.Sprintf("PCRRead %d at power-on", i), full(ordPCRRead, u32(i))})
	}
	steps = append(steps,
		diffStep{"PCRRead 24", rcOnly(ordPCRRead, u32(24))},
		diffStep{"Extend 24", rcOnly(ordExtend, u32(24), digest1)},
		diffStep{"Extend 10", full(ordExtend, u32(10), digest1)},
		diffStep{"PCRRead 10", full(ordPCRRead, u32(10))},
		diffStep{"Extend short", rcOnly(ordExtend, u32(10), digest1[:19])},
		diffStep{"Extend extra byte", rcOnly(ordExtend, u32(10), digest1, []byte{0})},
		diffStep{"PCRRead with an AUTH1 tag", func(tr tpm) string {
			rc, _, e := doAt(tr, 0, 0xC2, ordPCRRead, u32(0), make([]byte, 45))
			return e + fmt.Sprintf("rc=%#x", rc)
		}},
		diffStep{"PCRRead with an AUTH1 tag and no authorization", func(tr tpm) string {
			rc, _, e := doAt(tr, 0, 0xC2, ordPCRRead, u32(0))
			return e + fmt.Sprintf("rc=%#x", rc)
		}},
		diffStep{"PCRRead with an AUTH2 tag, truncated", func(tr tpm) string {
			rc, _, e := doAt(tr, 0, 0xC3, ordPCRRead, u16(0))
			return e + fmt.Sprintf("rc=%#x", rc)
		}},
		diffStep{"PCRRead with tag 0x00C4", func(tr tpm) string {
			rc, _, e := doAt(tr, 0, 0xC4, ordPCRRead, u32(0))
			return e + fmt.Sprintf("rc=%#x", rc)
		}},
		diffStep{"PCR_Reset sizeOfSelect 4", rcOnly(ordPCRReset, u16(4), []byte{0, 0, 1, 0})},
		diffStep{"PCR_Reset nothing selected", rcOnly(ordPCRReset, u16(3), []byte{0, 0, 0})},
		diffStep{"PCR_Reset PCR 0", rcOnly(ordPCRReset, u16(3), []byte{1, 0, 0})},
		diffStep{"PCR_Reset truncated", rcOnly(ordPCRReset, u16(3), []byte{0})},
	)
	for pcr := uint32(16); pcr < 24; pcr++ {
		for loc := uint8(0); loc <= 4; loc++ {
			sel := []byte{0, 0, 1 << (pcr - 16)}
			steps = append(steps, diffStep{fmt.Sprintf("PCR %d at locality %d", pcr, loc), func(tr tpm) string {
				rc1, out1, e1 := doAt(tr, loc, 0xC1, ordExtend, u32(pcr), digest1)
				rc2, _, e2 := doAt(tr, loc, 0xC1, ordPCRReset, u16(3), sel)
				rc3, out3, e3 := doAt(tr, loc, 0xC1, ordPCRRead, u32(pcr))
				return e1 + e2 + e3 + fmt.Sprintf("extend rc=%#x %x reset rc=%#x read rc=%#x %x", rc1, out1, rc2, rc3, out3)
			}})
		}
	}
	steps = append(steps, diffStep{"pv-grub's three extends", func(tr tpm) string {
		kernel := sha1.Sum([]byte("kernel"))
		cmdline := sha1.Sum([]byte("root=/dev/xvda1 ro"))
		initrd := sha1.Sum([]byte("initrd"))
		var s strings.Builder
		for _, m := range []struct {
			pcr uint32
			d   [20]byte
		}{{4, kernel}, {5, cmdline}, {5, initrd}} {
			rsp, err := tr.send(0, append(append([]byte{0, 0xC1, 0, 0, 0, 0x22, 0, 0, 0, 0x14}, u32(m.pcr)...), m.d[:]...))
			fmt.Fprintf(&s, "%x %v;", rsp, err)
		}
		for _, p := range []uint32{4, 5} {
			rc, out, _ := do(tr, ordPCRRead, u32(p))
			fmt.Fprintf(&s, "PCR%d rc=%#x %x;", p, rc, out)
		}
		return s.String()
	}})
	return steps
}

// miscSteps compare random, the EK, sessions, self-tests and SaveState.
func miscSteps() []diffStep {
	return []diffStep{
		{"GetRandom 32 shape", shape(ordGetRandom, u32(32))},
		{"GetRandom 0", full(ordGetRandom, u32(0))},
		{"GetRandom short", rcOnly(ordGetRandom, u16(1))},
		{"ReadPubek", func(tr tpm) string {
			anti := bytes.Repeat([]byte{7}, 20)
			rc, out, e := do(tr, ordReadPubek, anti)
			if len(out) < 28+20 {
				return e + fmt.Sprintf("rc=%#x %x", rc, out)
			}
			pub, sum := out[:len(out)-20], out[len(out)-20:]
			want := sha1.Sum(append(append([]byte{}, pub...), anti...))
			return fmt.Sprintf("rc=%#x len=%d parms=%x checksum-ok=%v", rc, len(out), pub[:28], bytes.Equal(sum, want[:]))
		}},
		{"ReadPubek short", rcOnly(ordReadPubek, make([]byte, 19))},
		{"OIAP shape", shape(ordOIAP)},
		{"OIAP then flush twice", func(tr tpm) string {
			_, out, e := do(tr, ordOIAP)
			if len(out) < 4 {
				return e + "no handle"
			}
			h := out[:4]
			rc1, _, _ := do(tr, ordFlushSpecific, h, u32(2))
			rc2, _, _ := do(tr, ordFlushSpecific, h, u32(2))
			return e + fmt.Sprintf("flush rc=%#x again rc=%#x", rc1, rc2)
		}},
		{"OSAP owner while unowned", rcOnly(ordOSAP, u16(2), u32(0x40000001), digest1)},
		{"OSAP short", rcOnly(ordOSAP, u16(2))},
		{"FlushSpecific unknown key", rcOnly(ordFlushSpecific, u32(0x01000123), u32(1))},
		{"FlushSpecific unknown type", rcOnly(ordFlushSpecific, u32(0), u32(0x77))},
		{"FlushSpecific unknown transport", rcOnly(ordFlushSpecific, u32(0x02000123), u32(4))},
		{"FlushSpecific unknown context", rcOnly(ordFlushSpecific, u32(0x00000123), u32(5))},
		{"FlushSpecific short", rcOnly(ordFlushSpecific, u32(0))},
		{"ContinueSelfTest", rcOnly(ordContinueSelfTest)},
		{"SelfTestFull", rcOnly(ordSelfTestFull)},
		{"GetTestResult", rcOnly(ordGetTestResult)},
		{"unknown ordinal", rcOnly(0x1234)},
		{"TPM 2.0 GetCapability", func(tr tpm) string {
			rsp, err := tr.send(0, []byte{0x80, 0x01, 0, 0, 0, 0x16, 0, 0, 0x01, 0x7A, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 0, 1})
			return fmt.Sprintf("%x %v", rsp, err)
		}},
		{"GetRandom 4 KiB shape", shape(ordGetRandom, u32(4096))},
		{"OIAP until the TPM runs out", func(tr tpm) string {
			var hs [][]byte
			rc := uint32(0)
			for len(hs) < 100 {
				var out []byte
				if rc, out, _ = do(tr, ordOIAP); rc != 0 {
					break
				}
				hs = append(hs, out[:4])
			}
			for _, h := range hs {
				do(tr, ordFlushSpecific, h, u32(2))
			}
			return fmt.Sprintf("%d sessions, then rc=%#x", len(hs), rc)
		}},
		{"SaveState", rcOnly(ordSaveState)},
		{"PCRRead after SaveState", full(ordPCRRead, u32(10))},
	}
}

// TestSwtpm12Differential runs every step against the engine and against
// swtpm in TPM 1.2 mode and requires the same result. swtpm is not
// manufactured: before the capability steps it is given an EK with
// TPM_CreateEndorsementKeyPair, as swtpm_setup --createek does.
func TestSwtpm12Differential(t *testing.T) {
	ref := &reference{p: swtpmtest.Start12(t)}
	eng, err := tpm12.New(tpm12.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sides := []tpm{engine{eng}, ref}
	runSteps := func(steps []diffStep) {
		for _, s := range steps {
			a, b := s.run(sides[0]), s.run(sides[1])
			if testing.Verbose() {
				t.Logf("%s: %s", s.name, a)
			}
			if a != b {
				t.Errorf("%s:\n engine %s\n swtpm  %s", s.name, a, b)
			}
		}
	}
	runSteps(startupSteps())
	rsaParms := append(append(u32(2048), u32(2)...), u32(0)...)
	keyParms := append(append(append(u32(1), u16(3)...), u16(1)...), append(u32(uint32(len(rsaParms))), rsaParms...)...)
	if rc, _, e := do(ref, ordCreateEndorsementKeyPair, make([]byte, 20), keyParms); rc != 0 || e != "" {
		t.Fatalf("swtpm CreateEndorsementKeyPair: rc %#x %s", rc, e)
	}
	runSteps(capabilitySteps())
	runSteps(pcrSteps())
	runSteps(miscSteps())
	runSteps(resumeSteps())
}
