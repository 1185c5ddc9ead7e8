//go:build tamago

// Command qemu-tis is a test image for plain QEMU (q35, TCG): it drives the
// TPM behind QEMU's tpm-tis device (TCG PC Client FIFO interface at
// 0xFED40000, backed by swtpm) with drivers/tpmtis and checks the family
// found, GetRandom, PCR read, extends at localities 0 and 2 (PCR 21 may only
// be extended from locality 2 under the PC Client profile), and, for TPM
// 2.0, CreatePrimary + Quote verified in Go; TPM 1.2 goes through go-tpm's
// legacy tpm package. It then times GetRandom and PCR_Extend through the
// driver, runs localities 0 and 2 concurrently, and checks that locality 4
// and an address without a TPM fail cleanly. Every result is a line on COM1
// that run.sh checks; the last line is "TIS-RESULT PASS" or "TIS-RESULT FAIL".
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/board/qemu/q35"
	"github.com/xenvtpm/xenvtpm/build/qemu-tis/benchcmd"
	"github.com/xenvtpm/xenvtpm/drivers/tpmtis"
)

// benchN is the number of timed commands of each kind.
const benchN = 200

var failures []string

func check(name string, err error) bool {
	if err != nil {
		fmt.Printf("CHECK %s FAIL: %v\n", name, err)
		failures = append(failures, name)
		return false
	}
	fmt.Printf("CHECK %s OK\n", name)
	return true
}

func main() {
	fmt.Printf("TIS-BOOT tsc_hz=%d\n", q35.TSCFreq)

	// The host timestamps these two lines to check the guest clock.
	fmt.Println("TIME-MARK 0")
	time.Sleep(time.Second)
	fmt.Println("TIME-MARK 1")

	d0, err := tpmtis.Open(tpmtis.Config{Locality: 0})
	if !check("open-locality-0", err) {
		finish()
	}
	in := d0.Info()
	fmt.Printf("TIS-INFO family=%v registers=%v vid=0x%04x did=0x%04x rid=0x%02x intfcap=0x%08x intfid=0x%08x\n",
		in.Family, in.RegisterFamily, in.VendorID, in.DeviceID, in.RevisionID, in.IntfCapability, in.InterfaceID)
	fmt.Printf("TIS-TIMING A=%v B=%v C=%v D=%v short=%v medium=%v long=%v reported=%v\n",
		in.Timeouts.A, in.Timeouts.B, in.Timeouts.C, in.Timeouts.D,
		in.Durations.Short, in.Durations.Medium, in.Durations.Long, in.ReportedTimings)
	if in.Family != in.RegisterFamily {
		check("family-agrees", fmt.Errorf("probe says %v, registers say %v", in.Family, in.RegisterFamily))
	}
	fmt.Printf("TIS-FAMILY %v\n", in.Family)

	d2, err := tpmtis.Open(tpmtis.Config{Locality: 2})
	if !check("open-locality-2", err) {
		finish()
	}

	switch in.Family {
	case tpmtis.Family20:
		run20(d0, d2)
	case tpmtis.Family12:
		run12(d0, d2)
	}
	coexist(d0, d2, in.Family == tpmtis.Family20)
	faults()
	finish()
}

func finish() {
	if len(failures) > 0 {
		fmt.Printf("TIS-RESULT FAIL %v\n", failures)
		q35.Exit(1)
	}
	fmt.Println("TIS-RESULT PASS")
	q35.Exit(0)
}

func rcOf(err error) (tpm2.TPMRC, bool) {
	var rc tpm2.TPMRC
	ok := errors.As(err, &rc)
	return rc, ok
}

func run20(d0, d2 *tpmtis.TPM) {
	// SeaBIOS normally starts the TPM already; a second Startup answers
	// TPM_RC_INITIALIZE, which is fine.
	_, err := tpm2.Startup{StartupType: tpm2.TPMSUClear}.Execute(d0)
	if rc, ok := rcOf(err); ok && rc == tpm2.TPMRCInitialize {
		err = nil
	}
	check("startup", err)

	rnd, err := tpm2.GetRandom{BytesRequested: 16}.Execute(d0)
	if check("getrandom", err) {
		fmt.Printf("TIS-RANDOM %x\n", rnd.RandomBytes.Buffer)
	}

	read := func(d *tpmtis.TPM, pcr uint) ([]byte, error) {
		r, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
			Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcr),
		}}}}.Execute(d)
		if err != nil {
			return nil, err
		}
		if len(r.PCRValues.Digests) != 1 {
			return nil, fmt.Errorf("PCR %d: %d digests returned", pcr, len(r.PCRValues.Digests))
		}
		return r.PCRValues.Digests[0].Buffer, nil
	}
	extend := func(d *tpmtis.TPM, pcr uint32) error {
		_, err := tpm2.PCRExtend{
			PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
			Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
				HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{0x5A}, 32),
			}}},
		}.Execute(d)
		return err
	}

	p0, err := read(d0, 0)
	if check("pcr-read", err) {
		fmt.Printf("TIS-PCR0 %x\n", p0)
	}
	before16, _ := read(d0, 16)
	err = extend(d0, 16)
	if check("extend-pcr16-locality-0", err) {
		after16, _ := read(d0, 16)
		if bytes.Equal(before16, after16) {
			check("pcr16-changed", errors.New("PCR 16 unchanged after extend"))
		}
	}

	before21, _ := read(d0, 21)
	err = extend(d0, 21)
	if rc, ok := rcOf(err); ok && rc == tpm2.TPMRCLocality {
		fmt.Printf("TIS-LOCALITY0-PCR21 refused %v\n", err)
		check("extend-pcr21-refused-at-locality-0", nil)
	} else {
		check("extend-pcr21-refused-at-locality-0", fmt.Errorf("want TPM_RC_LOCALITY, got %v", err))
	}
	err = extend(d2, 21)
	if check("extend-pcr21-at-locality-2", err) {
		after21, _ := read(d2, 21)
		fmt.Printf("TIS-PCR21 before=%x after=%x\n", before21, after21)
		if bytes.Equal(before21, after21) {
			check("pcr21-changed", errors.New("PCR 21 unchanged after extend at locality 2"))
		}
	}

	quote20(d2)
	benchRaw(d0, true, "")
	benchWide(true)
	// The same extend through go-tpm's tpm2 client: adds its marshalling,
	// which runs on the emulated CPU.
	timeit("gotpm_pcr_extend16", d0, func() error { return extend(d0, 16) })
}

// quote20 creates an ECDSA P-256 attestation key under the owner hierarchy,
// quotes PCRs 16 and 21 and verifies the signature with Go's crypto.
func quote20(d *tpmtis.TPM) {
	tmpl := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, Restricted: true, SignEncrypt: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			CurveID: tpm2.TPMECCNistP256,
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
		}),
	}
	start := time.Now()
	cp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(d)
	if !check("createprimary", err) {
		return
	}
	fmt.Printf("TIS-CREATEPRIMARY ecc-p256 %v\n", time.Since(start))
	defer func() {
		_, err := tpm2.FlushContext{FlushHandle: cp.ObjectHandle}.Execute(d)
		check("flush", err)
	}()

	nonce := []byte("xenvtpm-qemu-tis-quote")
	q, err := tpm2.Quote{
		SignHandle:     tpm2.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
			Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(16, 21),
		}}},
	}.Execute(d)
	if !check("quote", err) {
		return
	}
	pubArea, err := cp.OutPublic.Contents()
	if !check("quote-public", err) {
		return
	}
	eccParms, err := pubArea.Parameters.ECCDetail()
	if !check("quote-ecc-parms", err) {
		return
	}
	eccPoint, err := pubArea.Unique.ECC()
	if !check("quote-ecc-point", err) {
		return
	}
	pub, err := tpm2.ECDSAPub(eccParms, eccPoint)
	if !check("quote-ecdsa-pub", err) {
		return
	}
	sig, err := q.Signature.Signature.ECDSA()
	if !check("quote-signature", err) {
		return
	}
	attest, err := q.Quoted.Contents()
	if !check("quote-attest", err) {
		return
	}
	if !bytes.Equal(attest.ExtraData.Buffer, nonce) {
		check("quote-nonce", fmt.Errorf("extraData %x, want %x", attest.ExtraData.Buffer, nonce))
		return
	}
	digest := sha256.Sum256(q.Quoted.Bytes())
	r := new(big.Int).SetBytes(sig.SignatureR.Buffer)
	s := new(big.Int).SetBytes(sig.SignatureS.Buffer)
	if !ecdsa.Verify(pub, digest[:], r, s) {
		check("quote-verify", errors.New("ECDSA signature over TPMS_ATTEST does not verify"))
		return
	}
	check("quote-verify", nil)
}

// timeit runs f benchN times and prints the p50 and mean latency and the
// register accesses per call.
func timeit(name string, d *tpmtis.TPM, f func() error) {
	lat := make([]time.Duration, 0, benchN)
	acc0 := d.Accesses()
	var total time.Duration
	for range benchN {
		t := time.Now()
		if err := f(); err != nil {
			check("bench-"+name, err)
			return
		}
		el := time.Since(t)
		lat = append(lat, el)
		total += el
	}
	slices.Sort(lat)
	perCmd := float64(d.Accesses()-acc0) / benchN
	fmt.Printf("TIS-BENCH %s n=%d p50_us=%d mean_us=%d mmio_per_cmd=%.1f\n",
		name, benchN, lat[benchN/2].Microseconds(), (total / benchN).Microseconds(), perCmd)
}

// benchRaw times byte-identical commands to the ones socketbench sends
// straight to swtpm, so the two figures compare the path, not the client.
func benchRaw(d *tpmtis.TPM, tpm2 bool, prefix string) {
	for _, b := range []struct {
		name string
		cmd  []byte
	}{
		{"getrandom32", benchcmd.GetRandom(tpm2)},
		{"pcr_extend16", benchcmd.Extend(tpm2, 16)},
	} {
		timeit(prefix+b.name, d, func() error {
			rsp, err := d.Send(b.cmd)
			if err == nil {
				err = benchcmd.Check(rsp)
			}
			return err
		})
	}
}

// benchWide repeats the timing with 4-byte FIFO accesses (Config.WideFIFO).
func benchWide(tpm2 bool) {
	dw, err := tpmtis.Open(tpmtis.Config{Locality: 0, WideFIFO: true})
	if !check("open-wide-fifo", err) {
		return
	}
	rsp, err := dw.Send(benchcmd.GetRandom(tpm2))
	if err == nil {
		err = benchcmd.Check(rsp)
	}
	if check("getrandom-wide-fifo", err) {
		benchRaw(dw, tpm2, "wide_")
	}
}

// coexist runs two users at localities 0 and 2 at once, as dom0 and the
// manager domain would share a TPM: each request waits for the other's
// locality through QEMU's arbitration and no command may fail.
func coexist(d0, d2 *tpmtis.TPM, tpm2 bool) {
	const n = 100
	cmd := benchcmd.GetRandom(tpm2)
	b0, b2 := d0.Stats().BusyWaits, d2.Stats().BusyWaits
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for _, d := range []*tpmtis.TPM{d0, d2} {
		wg.Go(func() {
			for range n {
				rsp, err := d.Send(cmd)
				if err == nil {
					err = benchcmd.Check(rsp)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
		failed++
	}
	fmt.Printf("TIS-COEXIST commands=%d failed=%d busy_waits_loc0=%d busy_waits_loc2=%d\n",
		2*n, failed, d0.Stats().BusyWaits-b0, d2.Stats().BusyWaits-b2)
	if failed > 0 {
		check("coexist", fmt.Errorf("%d of %d commands failed, first: %v", failed, 2*n, first))
		return
	}
	check("coexist", nil)
}

// faults opens the driver where it must fail cleanly on real QEMU: locality
// 4 (QEMU drops every write there, so it is never granted) and a page with
// no TPM behind it.
func faults() {
	start := time.Now()
	_, err := tpmtis.Open(tpmtis.Config{Locality: 4})
	fmt.Printf("TIS-FAULT locality-4 after %v: %v\n", time.Since(start).Round(time.Millisecond), err)
	if errors.Is(err, tpmtis.ErrLocality) {
		check("locality-4-not-granted", nil)
	} else {
		check("locality-4-not-granted", fmt.Errorf("want ErrLocality, got %v", err))
	}
	start = time.Now()
	_, err = tpmtis.Open(tpmtis.Config{Base: 0xFED80000})
	fmt.Printf("TIS-FAULT no-tpm after %v: %v\n", time.Since(start).Round(time.Millisecond), err)
	if errors.Is(err, tpmtis.ErrNoTPM) {
		check("no-tpm-detected", nil)
	} else {
		check("no-tpm-detected", fmt.Errorf("want ErrNoTPM, got %v", err))
	}
}

// --- TPM 1.2 ---

func rc12(rsp []byte) uint32 {
	if len(rsp) < 10 {
		return 0xFFFFFFFF
	}
	return binary.BigEndian.Uint32(rsp[6:10])
}

func run12(d0, d2 *tpmtis.TPM) {
	// TPM_Startup(TPM_ST_CLEAR); TPM_INVALID_POSTINIT means already started.
	rsp, err := d0.Send([]byte{0x00, 0xC1, 0, 0, 0, 12, 0, 0, 0, 0x99, 0, 1})
	if err == nil && rc12(rsp) != 0 && rc12(rsp) != 0x26 {
		err = fmt.Errorf("TPM_Startup: rc 0x%x", rc12(rsp))
	}
	check("startup", err)

	v, err := legacy.GetCapVersionVal(d0)
	if check("getcap-version", err) {
		fmt.Printf("TIS-VERSION %d.%d rev %d.%d vendor %q\n", v.Version.Major, v.Version.Minor,
			v.Version.RevMajor, v.Version.RevMinor, v.TPMVendorID[:])
	}
	rnd, err := legacy.GetRandom(d0, 16)
	if check("getrandom", err) {
		fmt.Printf("TIS-RANDOM %x\n", rnd)
	}
	p0, err := legacy.ReadPCR(d0, 0)
	if check("pcr-read", err) {
		fmt.Printf("TIS-PCR0 %x\n", p0)
	}
	var digest [20]byte
	copy(digest[:], bytes.Repeat([]byte{0x5A}, 20))
	before16, _ := legacy.ReadPCR(d0, 16)
	after16, err := legacy.PcrExtend(d0, 16, digest)
	if check("extend-pcr16-locality-0", err) && bytes.Equal(before16, after16) {
		check("pcr16-changed", errors.New("PCR 16 unchanged after extend"))
	}

	before21, _ := legacy.ReadPCR(d0, 21)
	rsp, err = d0.Send(benchcmd.Extend(false, 21))
	if err == nil && rc12(rsp) == 0x3D { // TPM_BAD_LOCALITY
		fmt.Println("TIS-LOCALITY0-PCR21 refused TPM_BAD_LOCALITY")
		check("extend-pcr21-refused-at-locality-0", nil)
	} else {
		check("extend-pcr21-refused-at-locality-0", fmt.Errorf("want TPM_BAD_LOCALITY, got rc 0x%x err %v", rc12(rsp), err))
	}
	after21, err := legacy.PcrExtend(d2, 21, digest)
	if check("extend-pcr21-at-locality-2", err) {
		fmt.Printf("TIS-PCR21 before=%x after=%x\n", before21, after21)
		if bytes.Equal(before21, after21) {
			check("pcr21-changed", errors.New("PCR 21 unchanged after extend at locality 2"))
		}
	}

	benchRaw(d0, false, "")
	benchWide(false)
	timeit("gotpm_pcr_extend16", d0, func() error {
		_, err := legacy.PcrExtend(d0, 16, digest)
		return err
	})
}
