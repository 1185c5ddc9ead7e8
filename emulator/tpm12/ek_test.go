package tpm12

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestReadPubek(t *testing.T) {
	tp := startedTPM(t)
	anti := bytes.Repeat([]byte{0x42}, 20)
	out := mustRun(t, tp, ordReadPubek, anti)
	// TPM_PUBKEY: TPM_KEY_PARMS (12 + 12 bytes of RSA parameters) and a
	// 256-byte modulus, then the checksum.
	if len(out) != 284+20 {
		t.Fatalf("ReadPubek returned %d bytes", len(out))
	}
	pub, sum := out[:284], out[284:]
	if !bytes.Equal(sum, sha(pub, anti)) {
		t.Error("checksum is not SHA-1(pubEndorsementKey || antiReplay)")
	}
	if binary.BigEndian.Uint32(pub) != algRSA || binary.BigEndian.Uint16(pub[4:]) != esRSAESOAEPSHA1MGF1 ||
		binary.BigEndian.Uint16(pub[6:]) != ssNone || binary.BigEndian.Uint32(pub[8:]) != 12 ||
		binary.BigEndian.Uint32(pub[12:]) != 2048 || binary.BigEndian.Uint32(pub[24:]) != 256 {
		t.Errorf("TPM_PUBKEY header %x", pub[:28])
	}
	k, err := tp.ek()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub[28:], k.N.Bytes()) || k.E != 65537 {
		t.Error("modulus is not the EK's")
	}
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordReadPubek, anti[:19])
	tp.ps.Flags.ReadPubek = false
	wantRC(t, tp, rcDisabledCmd, 0, tagRquCommand, ordReadPubek, anti)
	tp.ps.Flags.ReadPubek = true
	tp.ps.EK, tp.ekKey = nil, nil
	wantRC(t, tp, rcNoEndorsement, 0, tagRquCommand, ordReadPubek, anti)
}

// Each manufactured TPM has its own endorsement key.
func TestManufactureDistinctEK(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA-2048 key generation")
	}
	a := startedTPM(t)
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, b, ordStartup, u16(stClear))
	if bytes.Equal(mustRun(t, a, ordReadPubek, make([]byte, 20)), mustRun(t, b, ordReadPubek, make([]byte, 20))) {
		t.Error("two manufactured TPMs share an EK")
	}
}
