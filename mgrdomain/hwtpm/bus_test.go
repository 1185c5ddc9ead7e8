package hwtpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
)

// busTap records every command and response between the manager and the
// TPM: what a sniffer on the LPC or SPI bus sees.
type busTap struct {
	tr   transport.TPM
	mu   sync.Mutex
	msgs []busMsg
}

type busMsg struct {
	cc  tpm2.TPMCC // the command's code, also on its response
	rsp bool
	b   []byte
}

func (b *busTap) Send(cmd []byte) ([]byte, error) {
	rsp, err := b.tr.Send(cmd)
	var cc tpm2.TPMCC
	if len(cmd) >= 10 {
		cc = tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:]))
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, busMsg{cc: cc, b: bytes.Clone(cmd)}, busMsg{cc: cc, rsp: true, b: bytes.Clone(rsp)})
	b.mu.Unlock()
	return rsp, err
}

// leaks names the messages that hold any 8 consecutive bytes of secret.
func (b *busTap) leaks(secret []byte) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		for i := 0; i+8 <= len(secret); i++ {
			if bytes.Contains(m.b, secret[i:i+8]) {
				dir := "command"
				if m.rsp {
					dir = "response"
				}
				out = append(out, fmt.Sprintf("%s %#x", dir, uint32(m.cc)))
				break
			}
		}
	}
	return out
}

func (b *busTap) sent(cc tpm2.TPMCC) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.msgs {
		if m.cc == cc && !m.rsp {
			n++
		}
	}
	return n
}

// setOwnerAuth gives the owner hierarchy an authValue, as a host owner
// would (tpm2_changeauth -c owner), before the manager's bus is watched.
func setOwnerAuth(t *testing.T, tr transport.TPM, a Auth) {
	t.Helper()
	_, err := tpm2.HierarchyChangeAuth{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NewAuth:    tpm2.TPM2BAuth{Buffer: a.TPM2()},
	}.Execute(tr)
	if err != nil {
		t.Fatalf("TPM2_HierarchyChangeAuth(owner): %v", err)
	}
}

// TestBusCarriesNoSecrets runs everything the manager asks of a TPM 2.0 —
// counter creation and use, sealing to PCRs and to none, unsealing, a
// reseal and its retirement — and looks for the storage key, owner_auth=
// and srk_auth= in every byte that crossed the bus.
func TestBusCarriesNoSecrets(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	owner, _ := ParseAuth("text:owner secret")
	srk, _ := ParseAuth("text:srk secret")
	setOwnerAuth(t, s.TPM(), owner)
	tap := &busTap{tr: s.TPM()}
	tp, err := Open(tap, Config{OwnerAuth: owner, SRKAuth: srk})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("the manager's storage key: 32 B!")
	if _, err := tp.CreateCounter(); err != nil {
		t.Fatal(err)
	}
	if err := tp.IncrementCounter(); err != nil {
		t.Fatal(err)
	}
	for _, pcrs := range [][]uint{DefaultSealPCRs, {}} {
		blob, err := tp.Seal(key, pcrs)
		if err != nil {
			t.Fatalf("Seal(%s): %v", FormatPCRs(pcrs), err)
		}
		if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Unseal(%s) = %q, %v", FormatPCRs(pcrs), got, err)
		}
	}
	blob, err := tp.Reseal(key, []uint{7})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Retire(blob); err != nil {
		t.Fatal(err)
	}
	if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal after the reseal = %q, %v", got, err)
	}
	// The watched traffic is the real thing: the key went in and came
	// out, and the owner and the SRK authorised commands.
	for _, cc := range []tpm2.TPMCC{tpm2.TPMCCCreate, tpm2.TPMCCUnseal, tpm2.TPMCCCreatePrimary, tpm2.TPMCCLoad, tpm2.TPMCCNVDefineSpace} {
		if tap.sent(cc) == 0 {
			t.Fatalf("no command %#x on the bus", uint32(cc))
		}
	}
	secrets := map[string][]byte{"storage key": key, "owner_auth": owner.TPM2(), "srk_auth": srk.TPM2()}
	for name, secret := range secrets {
		if l := tap.leaks(secret); len(l) > 0 {
			t.Errorf("the %s crossed the bus in clear, in: %s", name, strings.Join(l, ", "))
		}
	}
}

// TestUnsealOnlyAtItsLocality: a key sealed by a manager at locality 2 is
// refused by the TPM to commands at locality 0 (dom0's), even with the
// owner's secret and the manager's own code, and released at 2 again.
func TestUnsealOnlyAtItsLocality(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	s.SetLocality(2)
	tp := openTPM(t, s, Config{Locality: 2})
	key := bytes.Repeat([]byte{0x42}, 32)
	for _, pcrs := range [][]uint{DefaultSealPCRs, {}} {
		blob, err := tp.Seal(key, pcrs)
		if err != nil {
			t.Fatal(err)
		}
		if blob.Locality != 2 {
			t.Fatalf("blob records locality %d", blob.Locality)
		}
		if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Unseal at locality 2 = %x, %v", got, err)
		}
		// Commands arriving at locality 0 while the software believes it
		// is at 2: only the TPM can refuse.
		s.SetLocality(0)
		_, err = tp.Unseal(blob)
		if !errors.Is(err, ErrLocality) {
			t.Fatalf("Unseal(sealed to %s) at locality 0 = %v, want ErrLocality", FormatPCRs(pcrs), err)
		}
		t.Logf("at locality 0: %v", err)
		// Configured for locality 0: refused before asking the TPM, with
		// both localities named.
		if _, err := openTPM(t, s, Config{}).Unseal(blob); !errors.Is(err, ErrLocality) || !strings.Contains(err.Error(), "locality 2, the manager uses locality 0") {
			t.Fatalf("Unseal configured for locality 0 = %v", err)
		}
		s.SetLocality(2)
		if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Unseal back at locality 2 = %x, %v", got, err)
		}
	}
}

// policyUnseal is someone else holding the TPM and an old blob, using
// go-tpm directly: load it and satisfy as much of its policy as the TPM
// allows, skipping the seal epoch's PolicyNV if skipEpoch.
func policyUnseal(t *testing.T, tr transport.TPM, b *SealedBlob, skipEpoch bool) error {
	t.Helper()
	prim, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(primaryTemplate)}.Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext{FlushHandle: prim.ObjectHandle}.Execute(tr)
	pub, priv, err := b.areas()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := tpm2.Load{ParentHandle: tpm2.AuthHandle{Handle: prim.ObjectHandle, Name: prim.Name, Auth: tpm2.PasswordAuth(nil)}, InPublic: *pub, InPrivate: *priv}.Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext{FlushHandle: ld.ObjectHandle}.Execute(tr)
	_, err = tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16,
		func(tr transport.TPM, s tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
			if err := pcrPolicy(tr, s, b.PCRs); len(b.PCRs) > 0 && err != nil {
				return err
			}
			if err := policyLocality(tr, s, b.Locality); err != nil {
				return err
			}
			if skipEpoch {
				return nil
			}
			return epochPolicy(tr, s, b)
		})}}.Execute(tr)
	return err
}

// TestResealRetiresOlderBlobs: the upgrade path seals the key to no PCRs,
// then to the default selection. Once the reseal is retired, the weak
// blob — on any copy of the disk — releases nothing, to the manager or to
// anyone else driving the TPM; until then it still works, so a power cut
// between writing the new blob and retiring loses nothing.
func TestResealRetiresOlderBlobs(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp := openTPM(t, s, Config{})
	key := bytes.Repeat([]byte{0x24}, 32)
	weak, err := tp.Seal(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	strong, err := tp.Reseal(key, DefaultSealPCRs)
	if err != nil {
		t.Fatal(err)
	}
	if strong.EpochBound != weak.EpochBound+1 {
		t.Fatalf("reseal bound %d after seal bound %d", strong.EpochBound, weak.EpochBound)
	}
	if got, err := tp.Unseal(weak); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal(weak) before Retire = %x, %v", got, err)
	}
	if err := tp.Retire(strong); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Unseal(weak); !errors.Is(err, ErrRetired) {
		t.Fatalf("Unseal(weak) after Retire = %v, want ErrRetired", err)
	}
	if err := policyUnseal(t, s.TPM(), weak, false); !errors.Is(err, ErrRetired) || !errors.Is(err, tpm2.TPMRCPolicy) {
		t.Fatalf("the weak blob's policy run directly = %v, want TPM_RC_POLICY from PolicyNV", err)
	}
	if err := policyUnseal(t, s.TPM(), weak, true); !errors.Is(err, tpm2.TPMRCPolicyFail) {
		t.Fatalf("the weak blob's policy without PolicyNV = %v, want TPM_RC_POLICY_FAIL", err)
	}
	if got, err := tp.Unseal(strong); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal(strong) = %x, %v", got, err)
	}

	// A format on the same TPM (another disk) retires nothing.
	other, err := tp.Seal(bytes.Repeat([]byte{0x25}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Unseal(strong); err != nil {
		t.Fatalf("Unseal(strong) after another disk's format = %v", err)
	}
	// A reseal cut before Retire: unsealing the new blob finishes it.
	stronger, err := tp.Reseal(key, []uint{0, 7})
	if err != nil {
		t.Fatal(err)
	}
	s.Restart()
	tp = openTPM(t, s, Config{})
	if got, err := tp.Unseal(stronger); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal(stronger) = %x, %v", got, err)
	}
	older := map[string]*SealedBlob{"strong": strong, "other": other, "weak": weak}
	for name, b := range older {
		if _, err := tp.Unseal(b); !errors.Is(err, ErrRetired) {
			t.Fatalf("Unseal(%s) after the next reseal's blob unsealed = %v, want ErrRetired", name, err)
		}
	}
	if err := tp.Retire(stronger); err != nil {
		t.Fatalf("Retire once more = %v", err)
	}
	if _, err := tp.Unseal(stronger); err != nil {
		t.Fatalf("Unseal(stronger) after a second Retire = %v", err)
	}
}

// TestEpochTakenOrGone: an NV index at the epoch's place that is not the
// manager's epoch is refused rather than used, and an epoch undefined by
// the owner leaves a blob that says it was retired.
func TestEpochTakenOrGone(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	_, err := tpm2.NVDefineSpace{AuthHandle: tpm2.TPMRHOwner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
		NVIndex: DefaultEpochIndex, NameAlg: tpm2.TPMAlgSHA256, DataSize: 8,
		Attributes: tpm2.TPMANV{NT: tpm2.TPMNTOrdinary, AuthWrite: true, AuthRead: true, NoDA: true},
	})}.Execute(s.TPM())
	if err != nil {
		t.Fatal(err)
	}
	tp := openTPM(t, s, Config{})
	key := []byte("k")
	if _, err := tp.Seal(key, nil); err == nil || !strings.Contains(err.Error(), "not the manager's seal epoch") {
		t.Fatalf("Seal over a foreign NV index = %v", err)
	}
	blob, err := openTPM(t, s, Config{EpochIndex: DefaultEpochIndex + 0x10}).Seal(key, nil)
	if err != nil {
		t.Fatalf("Seal with another epoch index: %v", err)
	}
	if _, err := (tpm2.NVUndefineSpace{AuthHandle: tpm2.TPMRHOwner, NVIndex: tpm2.NamedHandle{Handle: DefaultEpochIndex + 0x10}}).Execute(s.TPM()); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Unseal(blob); !errors.Is(err, ErrRetired) {
		t.Fatalf("Unseal with the epoch undefined = %v, want ErrRetired", err)
	}
	if _, err := Open(s.TPM(), Config{EpochIndex: DefaultCounterIndex}); err == nil {
		t.Fatal("Open with the epoch on the counter's index succeeded")
	}
}

// TestStoragePrimaryNameChecked: another TPM's storage primary is refused
// by its name before a session is salted to it, so nothing is sent for
// that key to decrypt.
func TestStoragePrimaryNameChecked(t *testing.T) {
	tp := openTPM(t, swtpmtest.StartSwtpm(t, ""), Config{})
	blob, err := tp.Seal([]byte("k"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tap := &busTap{tr: swtpmtest.StartSwtpm(t, "").TPM()}
	other, err := Open(tap, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Unseal(blob); !errors.Is(err, ErrWrongParent) || !strings.Contains(err.Error(), "storage primary's name") {
		t.Fatalf("Unseal on another TPM = %v, want ErrWrongParent naming the primary", err)
	}
	if n := tap.sent(tpm2.TPMCCLoad) + tap.sent(tpm2.TPMCCUnseal) + tap.sent(tpm2.TPMCCStartAuthSession); n != 1 {
		t.Fatalf("%d Load, Unseal or StartAuthSession commands after the name check failed; want only the owner's session", n)
	}
}

// fixtureTPM starts swtpm on the TPM state the version-1 code left in
// testdata/v1: it sealed, with the default owner and SRK secrets and
// swtpm's PCRs as they are after a start, 32 bytes of 0x11 to PCRs
// 0,2,4,7 (blob-pcrs-default.bin) and 32 bytes of 0x22 to no PCRs
// (blob-pcrs-none.bin), and formatted mgr.img.gz.
func fixtureTPM(t *testing.T) *swtpmtest.Swtpm {
	t.Helper()
	dir := t.TempDir()
	st, err := os.ReadFile("testdata/v1/tpm2-00.permall")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tpm2-00.permall"), st, 0o600); err != nil {
		t.Fatal(err)
	}
	return swtpmtest.StartSwtpm(t, dir)
}

// TestLegacyBlobsUnseal: blobs of format version 1 decode, re-encode to
// the same bytes, unseal through salted, encrypted sessions (as current
// blobs do) and can be resealed to the current version.
func TestLegacyBlobsUnseal(t *testing.T) {
	s := fixtureTPM(t)
	tap := &busTap{tr: s.TPM()}
	tp, err := Open(tap, Config{})
	if err != nil {
		t.Fatal(err)
	}
	fixtures := map[string][]byte{"blob-pcrs-default.bin": bytes.Repeat([]byte{0x11}, 32), "blob-pcrs-none.bin": bytes.Repeat([]byte{0x22}, 32)}
	for file, key := range fixtures {
		enc, err := os.ReadFile(filepath.Join("testdata/v1", file))
		if err != nil {
			t.Fatal(err)
		}
		b, err := UnmarshalSealedBlob(enc)
		if err != nil || !b.Legacy() || !bytes.Equal(b.Marshal(), enc) {
			t.Fatalf("%s: %+v, %v; want a legacy blob that re-encodes the same", file, b, err)
		}
		got, err := tp.Unseal(b)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Unseal(%s) = %x, %v", file, got, err)
		}
		nb, err := tp.Reseal(key, b.PCRs)
		if err != nil || nb.Legacy() {
			t.Fatalf("Reseal(%s) = %+v, %v", file, nb, err)
		}
		if err := tp.Retire(nb); err != nil {
			t.Fatal(err)
		}
		if got, err := tp.Unseal(nb); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Unseal(%s resealed) = %x, %v", file, got, err)
		}
	}
	if l := tap.leaks(bytes.Repeat([]byte{0x11}, 32)); len(l) > 0 {
		t.Errorf("a legacy blob's key crossed the bus in clear, in: %s", strings.Join(l, ", "))
	}
}
