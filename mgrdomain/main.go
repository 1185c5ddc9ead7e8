//go:build tamago

// Command mgrdomain is the manager domain: a Xen PVH domain that keeps every
// vTPM's key on its own PV disk, under a storage key sealed to the hardware
// TPM, and serves vTPM domains through the vtpm split driver (tpmif v2) with
// Xen vtpmmgr's wire protocol (package mgrdomain/proto). The disk format and
// the sealing and rollback design are in docs/manager-storage.md §12
// (packages mgrdomain/manager, hwtpm, store).
//
// Its options (xl extra=) follow Xen's vtpmmgr-stubdom (xen-vtpmmgr(7)), so
// a manager's xl config carries over; they are declared in package
// mgrdomain/options and documented in docs/options.md.
//
// Start-up is all or nothing: the hardware TPM, then the disk (the first
// device/vbd), then the manager (unseal, rollback check, store), and only then
// the vTPM backend. Any failure is one "mgrdomain: cannot start: ..." line on
// the console and a crash exit, never a half-started manager.
//
// The domain powers off cleanly on `xl shutdown` (xenstore control/shutdown;
// the domain package does not handle it yet, so it is done here).
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/domain"
	"github.com/xenvtpm/xenvtpm/drivers/blkfront"
	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/drivers/tpmtis"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/manager"
	"github.com/xenvtpm/xenvtpm/mgrdomain/options"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/ratelimit"
)

// Version is set by the build.
var Version = "dev"

var dom *domain.Domain

// die is the one way start-up fails: a single clear line, then a crash exit
// (on_crash in the xl config decides what happens to the domain). Errors
// joined from several causes (the store's per-superblock reasons) carry
// newlines; they are folded so the whole reason stays on the one line.
func die(format string, a ...any) {
	msg := strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", "; ")
	dom.Log.Errorf("mgrdomain: cannot start: %s", msg)
	dom.Exit(1)
}

func main() {
	dom = domain.Start("mgrdomain", options.Spec())
	t0 := time.Now()
	cfg := dom.Config
	base, _ := strconv.ParseUint(cfg.Get("tpmiomem"), 0, 64)
	loc, _ := strconv.Atoi(cfg.Get("tpmlocality"))
	owner, _ := hwtpm.ParseAuth(cfg.Get("owner_auth"))
	srk, _ := hwtpm.ParseAuth(cfg.Get("srk_auth"))
	endorsement, _ := hwtpm.ParseAuth(cfg.Get("endorsement_auth"))
	pcrs, _ := hwtpm.ParsePCRs(cfg.Get("sealpcrs"))
	nvRate, _ := ratelimit.ParseRate(cfg.Get("hwnvrate"))
	nvBurst, _ := strconv.Atoi(cfg.Get("hwnvburst"))
	autoOn, autoGroup, _ := options.ParseAutocreate(cfg.Get("autocreate"))
	admins, _ := options.ParseAdmins(cfg.Get("admin"))
	dom.Log.Infof("xenvtpm manager domain %s on Xen %d.%d: domid=%d tpmdriver=%s tpmiomem=0x%x tpmlocality=%d sealpcrs=%s autocreate=%s admin=%s hwnvrate=%v hwnvburst=%d",
		Version, dom.Xen.Major, dom.Xen.Minor, dom.ID, cfg.Get("tpmdriver"), base, loc, hwtpm.FormatPCRs(pcrs), cfg.Get("autocreate"), cfg.Get("admin"), nvRate, nvBurst)

	// One grant table for every frontend: the disk, and the TPM when it
	// is reached through a vtpm device.
	table, err := grant.NewTable(xen.GrantOps{H: dom.Xen}, grant.FrontendWindow, 0)
	if err != nil {
		die("grant table: %v", err)
	}
	var tpm transport.TPM
	if cfg.Get("tpmdriver") == "tpmfront" {
		tpm = openTPMFront(table, uint8(loc))
	} else {
		tpm = openTIS(base, loc, cfg.Get("tpmseize") == "1")
	}
	hwcfg := hwtpm.Config{OwnerAuth: owner, SRKAuth: srk, EndorsementAuth: endorsement, Locality: uint8(loc)}
	// Open probes the family; a TPM 1.2 is opened by Open12 instead.
	var hw manager.Hardware
	hw20, err := hwtpm.Open(tpm, hwcfg)
	switch {
	case errors.Is(err, hwtpm.ErrTPM12):
		hw, err = hwtpm.Open12(tpm, hwcfg)
		if err != nil {
			die("hardware TPM 1.2: %v", err)
		}
		dom.Log.Infof("hardware TPM 1.2: enabled, active, owned; the storage key is sealed to SHA-1 PCRs and released only at locality %d", loc)
	case err != nil:
		die("hardware TPM: %v", err)
	default:
		hw = hw20
	}

	// The disk: the first device/vbd of this domain.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	disk, err := blkfront.Open(ctx, blkfront.Config{Store: dom.Store, Grants: table, Events: dom.Events, Logf: dom.Log.Infof})
	cancel()
	if err != nil {
		die("disk (xl disk=[...], first device/vbd): %v", err)
	}
	if disk.ReadOnly() {
		die("disk %s is read-only: the manager writes to its disk (give it access=rw)", disk.Node())
	}
	dom.Log.Infof("disk %s: %d sectors of %d bytes (%d MiB), flush %s",
		disk.Node(), disk.Sectors(), disk.SectorSize(), disk.Sectors()*uint64(disk.SectorSize())>>20, disk.FlushMethod())

	// The manager: unseal, rollback check against the NV counter, store.
	tm := time.Now()
	m, err := manager.Open(disk, hw, manager.Config{
		SealPCRs:        pcrs,
		NoAutocreate:    !autoOn,
		AutocreateGroup: autoGroup,
		Admins:          admins,
		NVWriteRate:     nvRate,
		NVWriteBurst:    nvBurst,
		Logf:            dom.Log.Infof,
		WallClock:       dom.WallClock(),
	})
	if err != nil {
		die("%s%v", hint(err), err)
	}
	st := m.Stats()
	sealed := "sealed to PCRs " + hwtpm.FormatPCRs(st.SealPCRs)
	if st.SealedToApprovals {
		sealed = "sealed to group 0's SAA-approved configurations"
	}
	dom.Log.Infof("manager open in %v: %d vTPM records loaded in %d groups, hardware counter 0x%x = %d, %s, header generation %d, store generation %d",
		time.Since(tm).Round(time.Millisecond), st.Records, st.Groups, hw.CounterIndex(), st.Counter, sealed, st.HeaderGen, st.StoreInfo.Generation)
	if st.StoreInfo.FellBack {
		dom.Log.Infof("store: the newest state was unusable, opened the previous one: %v", st.StoreInfo.Rejected)
	}

	// The vTPM domains, through backend/vtpm.
	mapper, err := grant.NewMapper(xen.GrantOps{H: dom.Xen}, grant.BackendWindow, 0)
	if err != nil {
		die("grant mapper: %v", err)
	}
	h := &proto.Handler{Backend: m}
	refusals := &refusalLog{buckets: map[string]*refusalBucket{}}
	back, err := tpmback.New(tpmback.Config{
		Store:  dom.Store,
		Grants: mapper,
		Events: dom.Events,
		Log:    dom.Log,
		Handler: func(fe *tpmback.Frontend, _ uint8, cmd []byte) []byte {
			resp, err := h.Serve(cmd, peerInfo(fe))
			if err != nil {
				refusals.log(fe.String(), err)
			}
			return resp
		},
		// A connected vTPM is not deleted (VTPM_DEL).
		Mapped: func(fe *tpmback.Frontend, up bool) {
			m.Connected(peerInfo(fe).UUID, up)
			if !up {
				refusals.forget(fe.String())
			}
		},
	})
	if err != nil {
		die("tpmback: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	if err := watchShutdown(runCtx, m, disk, func() {
		// Stop serving and let tpmback tell every vTPM the backend is
		// Closed, so they fail fast instead of waiting on us.
		stop()
		select {
		case <-runDone:
		case <-time.After(3 * time.Second):
		}
	}); err != nil {
		die("control/shutdown watch: %v", err)
	}
	go report(m, back, nvRate, nvBurst)
	dom.Log.Infof("serving vTPM domains through backend/vtpm (start-up took %v)", time.Since(t0).Round(time.Millisecond))
	err = back.Run(runCtx)
	close(runDone)
	if runCtx.Err() != nil {
		select {} // shutdown in progress: watchShutdown exits the domain
	}
	dom.Log.Errorf("mgrdomain: tpmback stopped (%v): no vTPM can reach the manager, crashing", err)
	m.Close()
	dom.Exit(1)
}

// openTIS drives the hardware TPM through its TIS registers. The driver's
// default clock sleeps with the Go runtime.
func openTIS(base uint64, loc int, seize bool) transport.TPM {
	tis, err := tpmtis.Open(tpmtis.Config{Base: base, Locality: loc, Seize: seize})
	if err != nil {
		die("hardware TPM at 0x%x locality %d: %v", base, loc, err)
	}
	in := tis.Info()
	dom.Log.Infof("hardware TPM: family %s, vendor 0x%04x device 0x%04x rev %d, interface version %d, locality %d",
		familyName(in.Family), in.VendorID, in.DeviceID, in.RevisionID, in.InterfaceVersion, in.Locality)
	switch in.Family {
	case tpmtis.Family12:
		err = startup(tis, hwtpm.Family12)
	case tpmtis.Family20:
		err = startup(tis, hwtpm.Family20)
	default:
		die("hardware TPM at 0x%x: family not recognised", base)
	}
	if err != nil {
		die("hardware TPM: %v", err)
	}
	if n := tis.Stats().Seizes; n > 0 {
		dom.Log.Infof("hardware TPM: seized from a lower locality that held it (tpmseize=1)")
	}
	return tis
}

// openTPMFront reaches the TPM through this domain's first vtpm device
// (xl vtpm=["backend=<domain>"]): a nested manager, or a test bed whose
// "hardware" TPM is a vTPM domain. Only a TPM 2.0 is accepted. Commands
// go at locality loc (tpmlocality=), the locality the key is sealed to.
func openTPMFront(table *grant.Table, loc uint8) transport.TPM {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := tpmfront.Open(ctx, tpmfront.Config{Store: dom.Store, Pages: grant.TableSharer{Table: table}, Events: dom.Events})
	if err != nil {
		die("TPM through tpmfront (xl vtpm=[\"backend=...\"]): %v", err)
	}
	be, id := f.Backend()
	dom.Log.Infof("TPM through tpmfront: backend %s in domain %d", be, id)
	tpm := frontAt{f: f, loc: loc}
	if err := startup(tpm, hwtpm.Family20); err != nil {
		die("TPM through tpmfront: %v (only a TPM 2.0 is supported there)", err)
	}
	return tpm
}

// frontAt is a tpmfront transport at one locality.
type frontAt struct {
	f   *tpmfront.Front
	loc uint8
}

func (a frontAt) Send(cmd []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tpmfront.DefaultTimeout)
	defer cancel()
	return a.f.Send(ctx, a.loc, cmd)
}

// startup starts the TPM if no firmware did (hwtpm.Startup), and says so.
func startup(tpm transport.TPM, f hwtpm.Family) error {
	sent, err := hwtpm.Startup(tpm, f)
	if sent {
		dom.Log.Infof("hardware TPM was not started (no firmware did it): sent the %v start-up command (CLEAR)", f)
	}
	return err
}

func familyName(f tpmtis.Family) string {
	switch f {
	case tpmtis.Family20:
		return "2.0"
	case tpmtis.Family12:
		return "1.2"
	}
	return "unknown"
}

// hint names the kind of refusal first and what the operator can do about
// it, ahead of the detailed cause.
func hint(err error) string {
	switch {
	case errors.Is(err, manager.ErrRollback), errors.Is(err, manager.ErrCounterMissing):
		return "ROLLBACK (restore the newest disk image; accepting an older one needs an explicit recovery step): "
	case errors.Is(err, hwtpm.ErrRetired):
		return "RETIRED (a later reseal on this TPM replaced this disk's sealed key: an old copy of the disk? restore the newest image): "
	case errors.Is(err, hwtpm.ErrRevoked):
		return "REVOKED (this disk's approval list was superseded by a newer one installed on this TPM: an old copy of the disk? restore the newest image): "
	case errors.Is(err, manager.ErrNotApproved), errors.Is(err, hwtpm.ErrNotApproved):
		return "NOT APPROVED (group 0's SAA approved none of this host's configurations: boot an approved one, or install a list that approves this one from an approved boot): "
	case errors.Is(err, hwtpm.ErrLocality):
		return "UNSEAL FAILED (the key is released only at the TPM locality it was sealed at: check tpmlocality=): "
	case errors.Is(err, manager.ErrUnseal):
		return "UNSEAL FAILED (boot the chain the key was sealed to, or check owner_auth=/srk_auth=): "
	case errors.Is(err, manager.ErrGarbageDisk):
		return "GARBAGE DISK (give the manager its own disk, or a zeroed one to format): "
	case errors.Is(err, manager.ErrBadDisk):
		return "BAD DISK (its contents do not verify): "
	}
	return ""
}

// reportEvery is how often the manager reports its hardware NV writes and
// its load, each when there is something new to report.
const reportEvery = 5 * time.Second

// report runs the manager's periodic reports (reportNVWrites, reportLoad)
// on one ticker.
func report(m *manager.Manager, back *tpmback.Backend, rate ratelimit.Rate, burst int) {
	nv := nvReport{t0: time.Now(), rate: rate, burst: burst}
	var load loadReport
	for range time.Tick(reportEvery) {
		nv.report(m.Stats())
		load.report(len(back.Frontends()))
	}
}

// nvReport reports the hardware NV writes (counter increments) and what
// the saves cost while they change: the wear the vTPMs cause, and whether
// the cap or the hardware holds saves back. The test bed
// (vtpmdomain/testbed-nvwear) reads these lines.
type nvReport struct {
	t0    time.Time
	rate  ratelimit.Rate
	burst int
	last  manager.Stats
}

func (r *nvReport) report(st manager.Stats) {
	if st.HWWrites == r.last.HWWrites && st.Saves == r.last.Saves && st.Busy == r.last.Busy {
		return
	}
	dom.Log.Infof("hardware NV writes: %d in %.1fs since start (cap hwnvrate=%v hwnvburst=%d); %d saves acknowledged, %d superseded by a newer one of the same vTPM, %d answered TPM_RETRY; counter %d",
		st.HWWrites, time.Since(r.t0).Seconds(), r.rate, r.burst, st.Saves, st.Coalesced, st.Busy, st.Counter)
	r.last = st
}

// loadReport reports, while either changes, how many vTPM devices the
// manager serves and the memory the Go runtime holds for them: the manager
// is meant to serve every vTPM of a host, and the test bed
// (mgrdomain/testbed-scale) reads these lines.
type loadReport struct {
	lastN    int
	lastHeap uint64
	ms       runtime.MemStats
}

func (r *loadReport) report(n int) {
	runtime.ReadMemStats(&r.ms)
	if n == r.lastN && max(r.ms.HeapInuse, r.lastHeap)-min(r.ms.HeapInuse, r.lastHeap) < 1<<20 {
		return
	}
	dom.Log.Infof("load: %d vTPM devices; Go heap in use %.1f MiB, %.1f MiB taken from the domain's RAM by the runtime",
		n, float64(r.ms.HeapInuse)/(1<<20), float64(r.ms.Sys-r.ms.HeapReleased)/(1<<20))
	r.lastN, r.lastHeap = n, r.ms.HeapInuse
}

// peerInfo identifies a vTPM domain by its backend directory: the uuid there
// is written by the toolstack, not by the vTPM. A missing or malformed uuid
// leaves the zero UUID, which the manager refuses.
func peerInfo(fe *tpmback.Frontend) proto.PeerInfo {
	p := proto.PeerInfo{DomID: uint32(fe.Domid), DevID: fe.Handle}
	if b, err := hex.DecodeString(strings.ReplaceAll(fe.UUID, "-", "")); err == nil && len(b) == 16 {
		copy(p.UUID[:], b)
	}
	return p
}

// watchShutdown powers the domain off when the toolstack asks (domain's
// OnShutdown): it closes the manager (which waits for a save in flight;
// everything acknowledged is already durable), detaches the disk and exits 0.
func watchShutdown(ctx context.Context, m *manager.Manager, disk *blkfront.Device, stop func()) error {
	return dom.OnShutdown(ctx, func(string) {
		t := time.Now()
		dom.Log.Infof("closing the manager")
		stop()
		if err := m.Close(); err != nil {
			dom.Log.Errorf("closing the manager: %v", err)
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := disk.Close(cctx); err != nil {
			dom.Log.Infof("closing the disk: %v (everything acknowledged was already flushed)", err)
		}
		cancel()
		dom.LogMemory()
		dom.Log.Infof("manager closed in %v: powering off", time.Since(t).Round(time.Millisecond))
		dom.Exit(0)
	})
}

// refusalLog puts on the console why the manager refused a frontend's
// request (an unknown vTPM, a group its SAA has not approved, a
// management request from outside admin=, a malformed message): one line
// per refusal, at most refusalBurst at once and one per refusalEvery per
// frontend after that, so a hostile frontend cannot flood the console.
type refusalLog struct {
	mu      sync.Mutex
	buckets map[string]*refusalBucket
}

type refusalBucket struct {
	b       *ratelimit.Bucket
	dropped int
}

const (
	refusalBurst = 5
	refusalEvery = 10 * time.Second
)

func (r *refusalLog) log(fe string, err error) {
	now := time.Now()
	r.mu.Lock()
	rb := r.buckets[fe]
	if rb == nil {
		rb = &refusalBucket{b: ratelimit.NewBucket(refusalBurst, ratelimit.Rate{N: 1, Per: refusalEvery}, now)}
		r.buckets[fe] = rb
	}
	if !rb.b.Take(now, 0) {
		rb.dropped++
		r.mu.Unlock()
		return
	}
	dropped := rb.dropped
	rb.dropped = 0
	r.mu.Unlock()
	more := ""
	if dropped > 0 {
		more = fmt.Sprintf(" (%d more refusals to this frontend not shown)", dropped)
	}
	dom.Log.Infof("refused frontend %s: %v%s", fe, err, more)
}

// forget drops a frontend that went away.
func (r *refusalLog) forget(fe string) {
	r.mu.Lock()
	delete(r.buckets, fe)
	r.mu.Unlock()
}
