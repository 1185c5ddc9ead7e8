// Package tischeck holds the checks the TIS driver proofs run against a real
// TPM behind the TCG PC Client FIFO interface (TIS 1.3 / PC Client PTP FIFO):
// the plain-QEMU image (build/qemu-tis) and the Xen iomem-passthrough image
// (build/tisxen) run the same code, so a result on one means the same on the
// other. TPM 2.0 commands follow TPM 2.0 Part 3 through go-tpm's tpm2 client;
// TPM 1.2 commands follow TPM Main Part 3 through go-tpm's legacy tpm
// package. PCR 21 is the locality witness: the PC Client profile lets only
// locality 2 extend it, on both families.
//
// Every result is one console line the host (or dom0) scripts match:
// "CHECK <name> OK" or "CHECK <name> FAIL: <error>", "TIS-..." lines with
// details, "TIS-BENCH <name> n= p50_us= mean_us= mmio_per_cmd=" figures.
package tischeck

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync"
	"time"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/build/qemu-tis/benchcmd"
	"github.com/xenvtpm/xenvtpm/drivers/tpmtis"
)

// WitnessPCR may be extended from locality 2 only (PC Client PTP PCR
// attributes; the same for TPM 1.2's PC Client specification).
const WitnessPCR = 21

// Run collects check results and prints them.
type Run struct {
	Out    io.Writer
	BenchN int // commands per timed figure (default 200)
	// Clock is given to the drivers Faults opens (nil: the driver's
	// default, the time package).
	Clock    tpmtis.Clock
	Failures []string
}

// Check prints one result line and records a failure.
func (r *Run) Check(name string, err error) bool {
	if err != nil {
		fmt.Fprintf(r.Out, "CHECK %s FAIL: %v\n", name, err)
		r.Failures = append(r.Failures, name)
		return false
	}
	fmt.Fprintf(r.Out, "CHECK %s OK\n", name)
	return true
}

// Printf prints a detail line.
func (r *Run) Printf(format string, a ...any) { fmt.Fprintf(r.Out, format, a...) }

// Failed reports whether any check failed.
func (r *Run) Failed() bool { return len(r.Failures) > 0 }

// Info prints what the driver found and checks that the interface registers
// and the probe command agree on the family.
func (r *Run) Info(d *tpmtis.TPM) tpmtis.Info {
	in := d.Info()
	r.Printf("TIS-INFO family=%v registers=%v vid=0x%04x did=0x%04x rid=0x%02x intfcap=0x%08x intfid=0x%08x locality=%d\n",
		in.Family, in.RegisterFamily, in.VendorID, in.DeviceID, in.RevisionID, in.IntfCapability, in.InterfaceID, in.Locality)
	r.Printf("TIS-TIMING A=%v B=%v C=%v D=%v short=%v medium=%v long=%v reported=%v\n",
		in.Timeouts.A, in.Timeouts.B, in.Timeouts.C, in.Timeouts.D,
		in.Durations.Short, in.Durations.Medium, in.Durations.Long, in.ReportedTimings)
	if in.Family != in.RegisterFamily {
		r.Check("family-agrees", fmt.Errorf("probe says %v, registers say %v", in.Family, in.RegisterFamily))
	}
	r.Printf("TIS-FAMILY %v\n", in.Family)
	return in
}

// Env is what the family checks run on.
type Env struct {
	// Main is the driver at the image's own locality: it runs every
	// command but the locality witness's second half.
	Main *tpmtis.TPM
	// Peer, if set, is a driver at another locality: PCR 21 is extended
	// through both, and must succeed exactly at locality 2.
	Peer *tpmtis.TPM
	// Config opened Main; the 4-byte-FIFO figures open a second driver
	// with it and WideFIFO set. Nil skips them.
	Config *tpmtis.Config
}

func rcOf(err error) (tpm2.TPMRC, bool) {
	var rc tpm2.TPMRC
	ok := errors.As(err, &rc)
	return rc, ok
}

// drivers returns Main and Peer (if any), in locality order, so the refusal
// is seen before the success whatever the image's own locality.
func (e Env) drivers() []*tpmtis.TPM {
	ds := []*tpmtis.TPM{e.Main}
	if e.Peer != nil {
		ds = append(ds, e.Peer)
	}
	slices.SortFunc(ds, func(a, b *tpmtis.TPM) int { return a.Info().Locality - b.Info().Locality })
	return ds
}

// TPM20 runs the TPM 2.0 checks: Startup, GetRandom, PCR_Read, PCR_Extend,
// the locality witness, CreatePrimary + Quote verified in Go, then the
// latency figures.
func (r *Run) TPM20(e Env) {
	d := e.Main
	loc := d.Info().Locality
	// Firmware normally starts the TPM already; a second Startup answers
	// TPM_RC_INITIALIZE, which is fine.
	_, err := tpm2.Startup{StartupType: tpm2.TPMSUClear}.Execute(d)
	if rc, ok := rcOf(err); ok && rc == tpm2.TPMRCInitialize {
		err = nil
	}
	r.Check("startup", err)

	rnd, err := tpm2.GetRandom{BytesRequested: 16}.Execute(d)
	if r.Check("getrandom", err) {
		r.Printf("TIS-RANDOM %x\n", rnd.RandomBytes.Buffer)
	}

	p0, err := pcrRead20(d, 0)
	if r.Check("pcr-read", err) {
		r.Printf("TIS-PCR0 %x\n", p0)
	}
	before16, _ := pcrRead20(d, 16)
	err = extend20(d, 16)
	if r.Check(fmt.Sprintf("extend-pcr16-locality-%d", loc), err) {
		after16, _ := pcrRead20(d, 16)
		if bytes.Equal(before16, after16) {
			r.Check("pcr16-changed", errors.New("PCR 16 unchanged after extend"))
		}
	}

	for _, dd := range e.drivers() {
		l := dd.Info().Locality
		before, _ := pcrRead20(dd, WitnessPCR)
		err := extend20(dd, WitnessPCR)
		if l != 2 {
			name := fmt.Sprintf("extend-pcr%d-refused-at-locality-%d", WitnessPCR, l)
			if rc, ok := rcOf(err); ok && rc == tpm2.TPMRCLocality {
				r.Printf("TIS-LOCALITY%d-PCR%d refused %v\n", l, WitnessPCR, err)
				r.Check(name, nil)
			} else {
				r.Check(name, fmt.Errorf("want TPM_RC_LOCALITY, got %v", err))
			}
			continue
		}
		if r.Check(fmt.Sprintf("extend-pcr%d-at-locality-2", WitnessPCR), err) {
			after, _ := pcrRead20(dd, WitnessPCR)
			r.Printf("TIS-PCR%d before=%x after=%x\n", WitnessPCR, before, after)
			if bytes.Equal(before, after) {
				r.Check(fmt.Sprintf("pcr%d-changed", WitnessPCR), fmt.Errorf("PCR %d unchanged after extend at locality 2", WitnessPCR))
			}
		}
	}

	r.Quote20(d)
	r.BenchRaw(d, true, "")
	r.benchWide(e.Config, true)
	// The same extend through go-tpm's tpm2 client: adds its marshalling,
	// which runs on the (emulated) CPU.
	r.Time("gotpm_pcr_extend16", d, func() error { return extend20(d, 16) })
}

func pcrRead20(d *tpmtis.TPM, pcr uint) ([]byte, error) {
	rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcr),
	}}}}.Execute(d)
	if err != nil {
		return nil, err
	}
	if len(rsp.PCRValues.Digests) != 1 {
		return nil, fmt.Errorf("PCR %d: %d digests returned", pcr, len(rsp.PCRValues.Digests))
	}
	return rsp.PCRValues.Digests[0].Buffer, nil
}

func extend20(d *tpmtis.TPM, pcr uint32) error {
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
			HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{0x5A}, 32),
		}}},
	}.Execute(d)
	return err
}

// Quote20 creates an ECDSA P-256 attestation key under the owner hierarchy,
// quotes PCRs 16 and 21 and verifies the signature with Go's crypto.
func (r *Run) Quote20(d *tpmtis.TPM) {
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
	if !r.Check("createprimary", err) {
		return
	}
	r.Printf("TIS-CREATEPRIMARY ecc-p256 %v\n", time.Since(start))
	defer func() {
		_, err := tpm2.FlushContext{FlushHandle: cp.ObjectHandle}.Execute(d)
		r.Check("flush", err)
	}()

	nonce := []byte("xenvtpm-tis-quote")
	start = time.Now()
	q, err := tpm2.Quote{
		SignHandle:     tpm2.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
			Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(16, WitnessPCR),
		}}},
	}.Execute(d)
	if !r.Check("quote", err) {
		return
	}
	r.Printf("TIS-QUOTE ecdsa-p256 %v\n", time.Since(start))
	if err := verifyQuote(cp, q, nonce); err != nil {
		r.Check("quote-verify", err)
		return
	}
	r.Check("quote-verify", nil)
}

// verifyQuote checks the quote's nonce and its ECDSA signature over the
// TPMS_ATTEST bytes with the key CreatePrimary returned.
func verifyQuote(cp *tpm2.CreatePrimaryResponse, q *tpm2.QuoteResponse, nonce []byte) error {
	pubArea, err := cp.OutPublic.Contents()
	if err != nil {
		return fmt.Errorf("public area: %w", err)
	}
	eccParms, err := pubArea.Parameters.ECCDetail()
	if err != nil {
		return fmt.Errorf("ECC parameters: %w", err)
	}
	eccPoint, err := pubArea.Unique.ECC()
	if err != nil {
		return fmt.Errorf("ECC point: %w", err)
	}
	pub, err := tpm2.ECDSAPub(eccParms, eccPoint)
	if err != nil {
		return fmt.Errorf("ECDSA key: %w", err)
	}
	sig, err := q.Signature.Signature.ECDSA()
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	attest, err := q.Quoted.Contents()
	if err != nil {
		return fmt.Errorf("TPMS_ATTEST: %w", err)
	}
	if !bytes.Equal(attest.ExtraData.Buffer, nonce) {
		return fmt.Errorf("extraData %x, want %x", attest.ExtraData.Buffer, nonce)
	}
	digest := sha256.Sum256(q.Quoted.Bytes())
	rr := new(big.Int).SetBytes(sig.SignatureR.Buffer)
	ss := new(big.Int).SetBytes(sig.SignatureS.Buffer)
	if !ecdsa.Verify(pub, digest[:], rr, ss) {
		return errors.New("ECDSA signature over TPMS_ATTEST does not verify")
	}
	return nil
}

// --- TPM 1.2 ---

func rc12(rsp []byte) uint32 {
	if len(rsp) < 10 {
		return 0xFFFFFFFF
	}
	return binary.BigEndian.Uint32(rsp[6:10])
}

const (
	rc12InvalidPostinit = 0x26 // TPM_INVALID_POSTINIT: already started
	rc12BadLocality     = 0x3D // TPM_BAD_LOCALITY
)

// TPM12 runs the TPM 1.2 checks through go-tpm's legacy tpm package:
// Startup, GetCapability(version), GetRandom, PcrRead, Extend, the
// locality witness, then the latency figures.
func (r *Run) TPM12(e Env) {
	d := e.Main
	loc := d.Info().Locality
	// TPM_Startup(TPM_ST_CLEAR) has no go-tpm call.
	rsp, err := d.Send([]byte{0x00, 0xC1, 0, 0, 0, 12, 0, 0, 0, 0x99, 0, 1})
	if err == nil && rc12(rsp) != 0 && rc12(rsp) != rc12InvalidPostinit {
		err = fmt.Errorf("TPM_Startup: rc 0x%x", rc12(rsp))
	}
	r.Check("startup", err)

	v, err := legacy.GetCapVersionVal(d)
	if r.Check("getcap-version", err) {
		r.Printf("TIS-VERSION %d.%d rev %d.%d vendor %q\n", v.Version.Major, v.Version.Minor,
			v.Version.RevMajor, v.Version.RevMinor, v.TPMVendorID[:])
	}
	rnd, err := legacy.GetRandom(d, 16)
	if r.Check("getrandom", err) {
		r.Printf("TIS-RANDOM %x\n", rnd)
	}
	p0, err := legacy.ReadPCR(d, 0)
	if r.Check("pcr-read", err) {
		r.Printf("TIS-PCR0 %x\n", p0)
	}
	var digest [20]byte
	copy(digest[:], bytes.Repeat([]byte{0x5A}, 20))
	before16, _ := legacy.ReadPCR(d, 16)
	after16, err := legacy.PcrExtend(d, 16, digest)
	if r.Check(fmt.Sprintf("extend-pcr16-locality-%d", loc), err) && bytes.Equal(before16, after16) {
		r.Check("pcr16-changed", errors.New("PCR 16 unchanged after extend"))
	}

	for _, dd := range e.drivers() {
		l := dd.Info().Locality
		before, _ := legacy.ReadPCR(dd, WitnessPCR)
		if l != 2 {
			// Raw, so the TPM's own return code is seen, not go-tpm's
			// rendering of it.
			name := fmt.Sprintf("extend-pcr%d-refused-at-locality-%d", WitnessPCR, l)
			rsp, err := dd.Send(benchcmd.Extend(false, WitnessPCR))
			if err == nil && rc12(rsp) == rc12BadLocality {
				r.Printf("TIS-LOCALITY%d-PCR%d refused TPM_BAD_LOCALITY\n", l, WitnessPCR)
				r.Check(name, nil)
			} else {
				r.Check(name, fmt.Errorf("want TPM_BAD_LOCALITY, got rc 0x%x err %v", rc12(rsp), err))
			}
			continue
		}
		after, err := legacy.PcrExtend(dd, WitnessPCR, digest)
		if r.Check(fmt.Sprintf("extend-pcr%d-at-locality-2", WitnessPCR), err) {
			r.Printf("TIS-PCR%d before=%x after=%x\n", WitnessPCR, before, after)
			if bytes.Equal(before, after) {
				r.Check(fmt.Sprintf("pcr%d-changed", WitnessPCR), fmt.Errorf("PCR %d unchanged after extend at locality 2", WitnessPCR))
			}
		}
	}

	r.BenchRaw(d, false, "")
	r.benchWide(e.Config, false)
	r.Time("gotpm_pcr_extend16", d, func() error {
		_, err := legacy.PcrExtend(d, 16, digest)
		return err
	})
}

// --- figures ---

func (r *Run) benchN() int {
	if r.BenchN > 0 {
		return r.BenchN
	}
	return 200
}

// Time runs f BenchN times and prints the p50 and mean latency and the
// register accesses per call.
func (r *Run) Time(name string, d *tpmtis.TPM, f func() error) {
	n := r.benchN()
	lat := make([]time.Duration, 0, n)
	acc0 := d.Accesses()
	var total time.Duration
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			r.Check("bench-"+name, err)
			return
		}
		el := time.Since(t)
		lat = append(lat, el)
		total += el
	}
	slices.Sort(lat)
	perCmd := float64(d.Accesses()-acc0) / float64(n)
	r.Printf("TIS-BENCH %s n=%d p50_us=%d mean_us=%d mmio_per_cmd=%.1f\n",
		name, n, lat[n/2].Microseconds(), (total / time.Duration(n)).Microseconds(), perCmd)
}

// BenchRaw times byte-identical commands to the ones socketbench sends
// straight to swtpm, so the two figures compare the path, not the client.
func (r *Run) BenchRaw(d *tpmtis.TPM, tpm2 bool, prefix string) {
	for _, b := range []struct {
		name string
		cmd  []byte
	}{
		{"getrandom32", benchcmd.GetRandom(tpm2)},
		{"pcr_extend16", benchcmd.Extend(tpm2, 16)},
	} {
		r.Time(prefix+b.name, d, func() error { return SendChecked(d, b.cmd) })
	}
}

// SendChecked sends cmd and turns a TPM error code into an error.
func SendChecked(d *tpmtis.TPM, cmd []byte) error {
	rsp, err := d.Send(cmd)
	if err == nil {
		err = benchcmd.Check(rsp)
	}
	return err
}

// benchWide repeats the timing with 4-byte FIFO accesses (Config.WideFIFO).
func (r *Run) benchWide(cfg *tpmtis.Config, tpm2 bool) {
	if cfg == nil {
		return
	}
	c := *cfg
	c.WideFIFO = true
	dw, err := tpmtis.Open(c)
	if !r.Check("open-wide-fifo", err) {
		return
	}
	defer dw.Close()
	if r.Check("getrandom-wide-fifo", SendChecked(dw, benchcmd.GetRandom(tpm2))) {
		r.BenchRaw(dw, tpm2, "wide_")
	}
}

// Concurrent runs two users at two localities at once, as dom0 and the
// manager domain would share a TPM: each request waits for the other's
// locality through the TPM's arbitration and no command may fail.
func (r *Run) Concurrent(a, b *tpmtis.TPM, tpm2 bool) {
	const n = 100
	cmd := benchcmd.GetRandom(tpm2)
	ba, bb := a.Stats().BusyWaits, b.Stats().BusyWaits
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for _, d := range []*tpmtis.TPM{a, b} {
		wg.Go(func() {
			for range n {
				if err := SendChecked(d, cmd); err != nil {
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
	la, lb := a.Info().Locality, b.Info().Locality
	r.Printf("TIS-COEXIST commands=%d failed=%d busy_waits_loc%d=%d busy_waits_loc%d=%d\n",
		2*n, failed, la, a.Stats().BusyWaits-ba, lb, b.Stats().BusyWaits-bb)
	if failed > 0 {
		r.Check("coexist", fmt.Errorf("%d of %d commands failed, first: %v", failed, 2*n, first))
		return
	}
	r.Check("coexist", nil)
}

// Faults opens the driver where it must fail cleanly: locality 4 (QEMU's
// tpm-tis drops every write there, so it is never granted) and a page with
// no TPM behind it (noTPM, read as all ones).
func (r *Run) Faults(base, noTPM uint64) {
	start := time.Now()
	_, err := tpmtis.Open(tpmtis.Config{Base: base, Locality: 4, Clock: r.Clock})
	r.Printf("TIS-FAULT locality-4 after %v: %v\n", time.Since(start).Round(time.Millisecond), err)
	if errors.Is(err, tpmtis.ErrLocality) {
		r.Check("locality-4-not-granted", nil)
	} else {
		r.Check("locality-4-not-granted", fmt.Errorf("want ErrLocality, got %v", err))
	}
	start = time.Now()
	_, err = tpmtis.Open(tpmtis.Config{Base: noTPM, Clock: r.Clock})
	r.Printf("TIS-FAULT no-tpm after %v: %v\n", time.Since(start).Round(time.Millisecond), err)
	if errors.Is(err, tpmtis.ErrNoTPM) {
		r.Check("no-tpm-detected", nil)
	} else {
		r.Check("no-tpm-detected", fmt.Errorf("want ErrNoTPM, got %v", err))
	}
}
