package tpmtis

import (
	"time"
)

// Clock is the driver's time source. The default uses the time package;
// tests pass a virtual clock so timeouts are exercised without waiting.
type Clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// Timeouts are the interface timeouts of TIS 1.3 §11.2.2 / PTP §6.5.1.
type Timeouts struct {
	A time.Duration // locality request
	B time.Duration // commandReady after a write of commandReady
	C time.Duration // stsValid after a FIFO access, dataAvail between response bursts
	D time.Duration // burstCount becoming non-zero
}

// Durations bound how long the TPM may take to execute a command, by class.
// Polling stops as soon as dataAvail is set, so a class only limits how long
// a hung TPM can hold the caller before the command is cancelled.
type Durations struct {
	Short    time.Duration
	Medium   time.Duration
	Long     time.Duration
	LongLong time.Duration // TPM 2.0 key generation
	Default  time.Duration // commands not in the driver's table
}

// TPM2Timeouts are the PTP defaults for TPM 2.0 (the same values Linux uses).
var TPM2Timeouts = Timeouts{A: 750 * time.Millisecond, B: 2000 * time.Millisecond, C: 200 * time.Millisecond, D: 30 * time.Millisecond}

// TPM12Timeouts are the TIS 1.3 defaults, used until (or unless) a TPM 1.2
// reports its own through TPM_GetCapability.
var TPM12Timeouts = Timeouts{A: 750 * time.Millisecond, B: 2000 * time.Millisecond, C: 750 * time.Millisecond, D: 750 * time.Millisecond}

// probeTimeouts are used before the family is known: the larger of both sets,
// so a slow TPM 1.2 is not mistaken for a broken one.
var probeTimeouts = Timeouts{A: 750 * time.Millisecond, B: 2000 * time.Millisecond, C: 750 * time.Millisecond, D: 750 * time.Millisecond}

// TPM2Durations follow Linux's TPM 2.0 duration classes.
var TPM2Durations = Durations{Short: 20 * time.Millisecond, Medium: 750 * time.Millisecond, Long: 2 * time.Second, LongLong: 300 * time.Second, Default: 120 * time.Second}

// TPM12Durations are used when a TPM 1.2 does not report its own
// (TPM_CAP_PROP_DURATION); they are generous on purpose.
var TPM12Durations = Durations{Short: 750 * time.Millisecond, Medium: 2 * time.Second, Long: 300 * time.Second, LongLong: 300 * time.Second, Default: 120 * time.Second}

type durationClass int

const (
	classDefault durationClass = iota
	classShort
	classMedium
	classLong
	classLongLong
)

// tpm2Class assigns TPM 2.0 command codes (TPM 2.0 Part 2, TPM_CC) to a class.
// Key generation gets the longest bound because a real TPM can take minutes
// to find an RSA prime; reads of state get the shortest.
var tpm2Class = map[uint32]durationClass{
	0x17A: classMedium,   // GetCapability
	0x17E: classMedium,   // PCR_Read
	0x181: classMedium,   // ReadClock
	0x165: classMedium,   // FlushContext
	0x162: classMedium,   // ContextSave
	0x161: classMedium,   // ContextLoad
	0x173: classMedium,   // ReadPublic
	0x169: classMedium,   // NV_ReadPublic
	0x144: classMedium,   // Startup
	0x17C: classMedium,   // GetTestResult
	0x17B: classLong,     // GetRandom: slow on some discrete parts
	0x146: classLong,     // StirRandom
	0x182: classLong,     // PCR_Extend
	0x13C: classLong,     // PCR_Event
	0x13D: classLong,     // PCR_Reset
	0x143: classLong,     // SelfTest
	0x142: classLong,     // IncrementalSelfTest
	0x145: classLong,     // Shutdown
	0x157: classLong,     // Load
	0x158: classLong,     // Quote
	0x15D: classLong,     // Sign
	0x15E: classLong,     // Unseal
	0x176: classLong,     // StartAuthSession
	0x14E: classLong,     // NV_Read
	0x137: classLong,     // NV_Write
	0x12A: classLong,     // NV_DefineSpace
	0x122: classLong,     // NV_UndefineSpace
	0x121: classLong,     // HierarchyControl
	0x129: classLong,     // HierarchyChangeAuth
	0x120: classLong,     // EvictControl
	0x131: classLongLong, // CreatePrimary
	0x153: classLongLong, // Create
	0x191: classLongLong, // CreateLoaded
	0x177: classLongLong, // VerifySignature
}

// tpm12Class assigns TPM 1.2 ordinals (TPM Main Part 2, TPM_ORD_*) to the
// short/medium/long classes a TPM 1.2 reports durations for.
var tpm12Class = map[uint32]durationClass{
	0x0A: classShort,  // OIAP
	0x0B: classShort,  // OSAP
	0x14: classShort,  // Extend
	0x15: classShort,  // PcrRead
	0x46: classShort,  // GetRandom
	0x65: classShort,  // GetCapability
	0x99: classShort,  // Startup
	0x98: classShort,  // SaveState
	0x54: classShort,  // GetTestResult
	0x7C: classShort,  // ReadPubek
	0xBA: classShort,  // FlushSpecific
	0xC8: classShort,  // PCR_Reset
	0x16: classMedium, // Quote
	0x3E: classMedium, // Quote2
	0x17: classMedium, // Seal
	0x18: classMedium, // Unseal
	0x3C: classMedium, // Sign
	0x20: classMedium, // LoadKey
	0x41: classMedium, // LoadKey2
	0x21: classMedium, // GetPubKey
	0x1E: classMedium, // UnBind
	0x32: classMedium, // CertifyKey
	0x7A: classMedium, // ActivateIdentity
	0xCC: classMedium, // NV_DefineSpace
	0xCD: classMedium, // NV_WriteValue
	0xCF: classMedium, // NV_ReadValue
	0x5B: classMedium, // OwnerClear
	0x5D: classMedium, // ForceClear
	0x0D: classLong,   // TakeOwnership
	0x1F: classLong,   // CreateWrapKey
	0x79: classLong,   // MakeIdentity
	0x78: classLong,   // CreateEndorsementKeyPair
	0x7F: classLong,   // CreateRevocableEK
	0x50: classLong,   // SelfTestFull
	0x53: classLong,   // ContinueSelfTest
}

func (d Durations) of(c durationClass) time.Duration {
	switch c {
	case classShort:
		return d.Short
	case classMedium:
		return d.Medium
	case classLong:
		return d.Long
	case classLongLong:
		return d.LongLong
	}
	return d.Default
}

// commandDuration is how long the TPM may take to execute cmd.
func commandDuration(f Family, d Durations, cmd []byte) time.Duration {
	if len(cmd) < headerSize {
		return d.Default
	}
	cc := be32(cmd[6:10])
	var c durationClass
	switch f {
	case Family20:
		c = tpm2Class[cc]
	case Family12:
		c = tpm12Class[cc]
	}
	return d.of(c)
}
