package tpm12

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
)

// seedCommands are well-formed commands of every implemented ordinal,
// and a few malformed ones, that seed the dispatcher fuzzer.
func seedCommands() [][]byte {
	d := bytes.Repeat([]byte{3}, 20)
	return [][]byte{
		command(tagRquCommand, ordStartup, u16(stClear)),
		command(tagRquCommand, ordStartup, u16(stState)),
		command(tagRquCommand, ordStartup, u16(stDeactivated)),
		command(tagRquCommand, ordSaveState),
		command(tagRquCommand, ordSelfTestFull),
		command(tagRquCommand, ordContinueSelfTest),
		command(tagRquCommand, ordGetTestResult),
		command(tagRquCommand, ordGetCapability, u32(capProperty), u32(4), u32(propTISTimeout)),
		command(tagRquCommand, ordGetCapability, u32(capProperty), u32(4), u32(propDuration)),
		command(tagRquCommand, ordGetCapability, u32(capFlag), u32(4), u32(capFlagPermanent)),
		command(tagRquCommand, ordGetCapability, u32(capVersionVal), u32(0)),
		command(tagRquCommand, ordGetCapability, u32(capOrd), u32(4), u32(ordExtend)),
		command(tagRquCommand, ordGetCapability, u32(capHandle), u32(4), u32(rtAuth)),
		command(tagRquCommand, ordGetCapability, u32(capPID), u32(2), u16(pidOSAP)),
		command(tagRquCommand, ordGetRandom, u32(16)),
		command(tagRquCommand, ordReadPubek, d),
		command(tagRquCommand, ordExtend, u32(10), d),
		command(tagRquCommand, ordPCRRead, u32(10)),
		command(tagRquCommand, ordPCRReset, u16(3), []byte{0, 0, 0x81}),
		command(tagRquCommand, ordOIAP),
		command(tagRquCommand, ordOSAP, u16(uint16(etOwner)), u32(0), d),
		command(tagRquCommand, ordFlushSpecific, u32(firstSessionHandle), u32(rtAuth)),
		command(tagRquAuth1, ordTakeOwnership, u16(pidOwner), u32(256), bytes.Repeat(d, 13)[:256], u32(256), bytes.Repeat(d, 13)[:256],
			srkParamsKey(keyUsageStorage, 0, 2048), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordTakeOwnership, u16(pidOwner), u32(0), u32(0), []byte{0, 0x28, 0, 0}, srkParamsKey(keyUsageStorage, 0, 2048)[4:],
			u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordOwnerClear, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordForceClear),
		command(tagRquAuth1, ordDisableOwnerClear, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordOwnerSetDisable, []byte{1}, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordChangeAuthOwner, u16(pidADCP), d, u16(uint16(etSRK)), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordOwnerReadInternalPub, u32(khSRK), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordResetLockValue, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordGetCapabilityOwner, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordOSAP, u16(uint16(etSRK)), u32(khSRK), d),
		command(tagRquAuth1, ordSeal, u32(khSRK), d, u32(26), u16(3), []byte{0, 0, 1}, d[:20], d[:1], u32(4), d[:4], u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordSeal, u32(khSRK), d, u32(4), u16(6), []byte{0x1F, 0x1F}, u32(0), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth2, ordUnseal, u32(khSRK), []byte{1, 1, 0, 0}, u32(0), u32(4), d[:4],
			u32(firstSessionHandle), d, []byte{0}, d, u32(firstSessionHandle+1), d, []byte{0}, d),
		command(tagRquCommand, ordNVDefineSpace, nvPubInfo(0x1000, nvPerOwnerWrite, 8), d),
		command(tagRquCommand, ordNVDefineSpace, nvPubInfo(0x1001, nvPerAuthWrite|nvPerAuthRead, 8), d),
		command(tagRquCommand, ordNVDefineSpace, nvPubInfo(nvIndexLock, 0, 0), d),
		command(tagRquAuth1, ordNVDefineSpace, nvPubInfo(0x1002, nvPerOwnerRead|nvPerOwnerWrite, 4), d, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordNVWriteValue, u32(0x1000), u32(0), u32(3), d[:3]),
		command(tagRquAuth1, ordNVWriteValue, u32(0x1000), u32(0), u32(3), d[:3], u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordNVWriteValueAuth, u32(0x1001), u32(0), u32(3), d[:3], u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordNVReadValue, u32(0x1000), u32(0), u32(8)),
		command(tagRquAuth1, ordNVReadValue, u32(0x1002), u32(0), u32(4), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordNVReadValueAuth, u32(0x1001), u32(0), u32(8), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordGetCapability, u32(capNVList), u32(0)),
		command(tagRquCommand, ordGetCapability, u32(capNVIndex), u32(4), u32(0x1000)),
		command(tagRquAuth1, ordCreateCounter, d, []byte("abcd"), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordIncrementCounter, u32(0), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordReadCounter, u32(0)),
		command(tagRquAuth1, ordReleaseCounter, u32(0), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordReleaseCounterOwner, u32(1), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth2, ordUnseal, u32(khSRK), u16(tagStoredData12), u16(0), u32(0), u32(0),
			u32(firstSessionHandle), d, []byte{0}, d, u32(firstSessionHandle+1), d, []byte{0}, d),
		command(tagRquAuth1, ordExtend, u32(10), d, u32(firstSessionHandle), d, []byte{1}, d),
		command(tagRquAuth2, ordPCRRead, u32(0), make([]byte, 2*authAreaSize)),
		command(tagRquAuth1, ordCreateWrapKey, u32(khSRK), d, d, marshalKey(keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1024, nil)), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordLoadKey2, u32(khSRK), marshalKey(keyInfo(keyUsageBind, 0, esRSAESOAEPSHA1MGF1, ssNone, 1024, pcrInfoLongFor(&TPM{}, 16))), u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordLoadKey, u32(khSRK), marshalKey(keyInfo(keyUsageStorage, 0, esRSAESOAEPSHA1MGF1, ssNone, 2048, nil))),
		command(tagRquCommand, ordGetPubKey, u32(khSRK)),
		command(tagRquCommand, ordEvictKey, u32(0x01000000)),
		command(tagRquAuth1, ordSign, u32(0x01000000), u32(20), d, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth1, ordUnBind, u32(0x01000000), u32(4), d[:4], u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordFlushSpecific, u32(0x01000000), u32(rtKey)),
		command(tagRquCommand, ordOSAP, u16(uint16(etKeyHandle)), u32(0x01000000), d),
		command(tagRquCommand, ordGetCapability, u32(capKeyHandle), u32(0)),
		command(tagRquCommand, ordQuote, u32(khSRK), d, u16(3), []byte{0, 4, 0}),
		command(tagRquAuth1, ordQuote, u32(0x01000000), d, u16(3), []byte{0xFF, 0xFF, 0xFF}, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquCommand, ordQuote2, u32(0x01000000), d, u16(3), []byte{0, 0, 1}, []byte{1}),
		command(tagRquAuth2, ordCertifyKey, u32(0x01000000), u32(0x01000001), d, u32(firstSessionHandle), d, []byte{0}, d, u32(firstSessionHandle+1), d, []byte{0}, d),
		command(tagRquCommand, ordCertifyKey, u32(0x01000000), u32(khSRK), d),
		command(tagRquAuth1, ordCertifyKey2, u32(khSRK), u32(0x01000000), d, d, u32(firstSessionHandle), d, []byte{0}, d),
		command(tagRquAuth2, ordMakeIdentity, d, d, marshalKey(keyInfo(keyUsageIdentity, 0, esNone, ssRSASSASHA1, 2048, nil)),
			u32(firstSessionHandle), d, []byte{0}, d, u32(firstSessionHandle+1), d, []byte{0}, d),
		command(tagRquAuth2, ordActivateIdentity, u32(0x01000000), u32(256), bytes.Repeat(d, 13)[:256],
			u32(firstSessionHandle), d, []byte{0}, d, u32(firstSessionHandle+1), d, []byte{0}, d),
		command(0x8001, 0x144, u16(0)),
		command(tagRquCommand, ordPhysicalPresence, u16(ppPresent)),
		command(tagRquCommand, ordResetEstablishmentBit),
		command(tagRquCommand, ordPhysicalEnable),
		command(tagRquCommand, ordPhysicalDisable),
		command(tagRquCommand, ordPhysicalSetDeactivated, []byte{1}),
		command(tagRquCommand, ordSetTempDeactivated),
		command(tagRquCommand, ordNVWriteValue, u32(nvIndex0), u32(0), u32(0)),
		command(tagRquCommand, ordNVReadValue, u32(0x1000), u32(0), u32(0)),
	}
}

// FuzzProcess drives one started TPM with arbitrary command buffers at
// arbitrary localities: every response is well formed (tag, paramSize
// equal to its length, within the buffer limit) and nothing panics.
func FuzzProcess(f *testing.F) {
	for _, c := range seedCommands() {
		f.Add(c, uint8(0))
	}
	f.Add(command(tagRquCommand, ordPCRReset, u16(3), []byte{0, 0, 0x7E}), uint8(2))
	tp := startedTPM(f)
	f.Fuzz(func(t *testing.T, cmd []byte, locality uint8) {
		onPanic = func(r any, stack []byte) { t.Fatalf("panic: %v\n%s", r, stack) }
		rsp := tp.Process(cmd, locality%6)
		if len(rsp) < 10 || len(rsp) > bufferMax ||
			binary.BigEndian.Uint32(rsp[2:]) != uint32(len(rsp)) {
			t.Fatalf("malformed response %x", rsp)
		}
		tag := binary.BigEndian.Uint16(rsp)
		if tag < tagRspCommand || tag > tagRspAuth2 {
			t.Fatalf("response tag %#x", tag)
		}
		if !tp.Started() || tp.failed {
			tp.Reset()
			tp.Process(command(tagRquCommand, ordStartup, u16(stClear)), 0)
		}
	})
}

// FuzzLoad feeds Load arbitrary blobs: it refuses or accepts, never
// panics, and a refused blob leaves the TPM working.
func FuzzLoad(f *testing.F) {
	blob, err := manufactured()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add(blob[:40])
	f.Add([]byte("XVTPMST\x00"))
	owned, _ := ownedTPM(f)
	if b, err := owned.Save(); err == nil {
		f.Add(b)
	}
	tp := newTPM(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		// The EK certificate's framing, as a guest may have written it.
		if der, err := ekcert.Unframe12(b); err == nil && len(der) > len(b)-ekcert.Frame12Header {
			t.Fatalf("a certificate of %d bytes out of %d", len(der), len(b))
		}
		if err := tp.Load(b); err != nil {
			return
		}
		tp.EKCert()
		tp.Process(command(tagRquCommand, ordStartup, u16(stClear)), 0)
		tp.Process(command(tagRquCommand, ordReadPubek, make([]byte, 20)), 0)
		tp.Process(command(tagRquCommand, ordStartup, u16(stState)), 0)
	})
}
