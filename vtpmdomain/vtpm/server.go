package vtpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/ratelimit"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
)

// Logger is what the server logs through.
type Logger interface {
	Infof(format string, a ...any)
	Debugf(format string, a ...any)
	Errorf(format string, a ...any)
}

// Saver keeps the engine's state blob durably: package vstate, on the
// domain's disk with its key held by the manager.
type Saver interface {
	Save(state []byte) error
}

// Config is what NewServer needs.
type Config struct {
	Options Options
	// State is the blob to resume (the engine's Save); nil manufactures a
	// new TPM: fresh seeds, no keys, no NV indices. A state of the family
	// Options.Family does not choose is refused (ErrOtherFamily).
	State []byte
	// Saver stores the state after every command that changed it, before
	// the command's response is released. Nil: the state lives only as long
	// as the domain.
	Saver Saver
	// HWPCR reads hardware PCR i (SHA-1) through the manager, for
	// Options.HWInitPCR. Required when HWInitPCR is not empty.
	HWPCR func(i int) ([20]byte, error)
	// CertifyEK asks the manager for an EK certificate (CERTIFY_EK);
	// nil: the TPM gets none (ekcert.go).
	CertifyEK func(proto.CertifyEK) ([]byte, error)
	// DeepQuote asks the manager for a deep quote (DEEP_QUOTE) and
	// returns its answer; nil: the guest's deep quote command is
	// answered TPM_RC_COMMAND_CODE (TPM 1.2: TPM_BAD_ORDINAL;
	// deepquote.go).
	DeepQuote func(proto.DeepQuote) ([]byte, error)
	Log       Logger
	// Now is the clock of the save budget and of the TPM; time.Now when
	// nil.
	Now func() time.Time
}

// Server owns one engine instance. Frontends may call Handle concurrently;
// commands run one at a time, as on a real TPM.
type Server struct {
	mu    sync.Mutex
	tpm   engine
	fam   *family
	saver Saver
	log   Logger
	// saved is the state as last stored: a change whose save fails is
	// undone by restoring it.
	saved []byte
	// unsaved is set if undoing a change failed (it cannot, the blob is
	// the engine's own): every command then first retries the save and
	// fails until it succeeds, so nothing is answered from a state that
	// is not stored.
	unsaved bool
	stats   Stats
	// localities are those frontends may use (Options.Localities);
	// refusedFrom names the peers already told of in the log.
	localities  Localities
	refusedFrom map[string]bool
	// budget rations the saves of guest commands (Options.SaveBudget,
	// SaveRefill); nil: unlimited. rationing is set while commands are
	// being refused for it, so the log says when it starts and ends.
	budget     *ratelimit.Bucket
	refillRate ratelimit.Rate
	rationing  bool
	now        func() time.Time
	askQuote   func(proto.DeepQuote) ([]byte, error)
}

// Stats counts the server's work.
type Stats struct {
	Commands   uint64
	Saves      uint64
	SaveErrors uint64
	// SaveTime is the total time spent saving (engine Save + Saver.Save).
	SaveTime time.Duration
	// StateBytes is the size of the last state blob saved.
	StateBytes int
	// PlatformResets counts platform resets (_TPM_Init) from the control
	// domain.
	PlatformResets uint64
	// DeepQuotes counts deep quotes answered.
	DeepQuotes uint64
	// LocalityRefused counts commands refused for their locality.
	LocalityRefused uint64
	// RateRefused counts commands answered TPM_RC_NV_RATE: the save
	// budget was spent, or the manager asked to retry later.
	RateRefused uint64
}

// TPM_RC_NV_UNAVAILABLE (Part 2 §6.6.3, a warning): the command needs NV
// and NV cannot be written now. A guest may retry.
const rcNVUnavailable = 0x923

// TPM_RC_LOCALITY (Part 2 §6.6.3, a warning): the command is not allowed
// at the locality it came from.
const rcLocality = 0x907

// TPM_RC_NV_RATE (Part 2 §6.6.3, a warning): the TPM is rate-limiting
// writes of its NV memory to prevent wear-out; the command had no effect
// and may be retried later, which TSS stacks do.
const rcNVRate = 0x920

// NewServer creates or resumes the engine and starts it as the options say.
// A new TPM with a Saver is saved at once, so that its seeds exist
// somewhere before anything depends on them.
func NewServer(c Config) (*Server, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	fam := familyOf(c.Options.Family)
	t, err := fam.newEngine(c.State, c.Now)
	if err != nil {
		return nil, err
	}
	s := &Server{tpm: t, fam: fam, saver: c.Saver, log: c.Log, saved: c.State,
		localities: c.Options.Localities, refusedFrom: map[string]bool{}, now: c.Now, askQuote: c.DeepQuote}
	if c.Saver != nil {
		s.budget = ratelimit.NewBucket(c.Options.SaveBudget, c.Options.SaveRefill, c.Now())
		s.refillRate = c.Options.SaveRefill
	}
	o := c.Options
	switch o.Startup {
	case StartupDeactivated:
		s.log.Infof("TPM %s left un-started (deactivated): the guest must send %s", fam.name, fam.startupName)
	case StartupSave:
		if c.State != nil {
			rc := s.startup(fam.state)
			if rc == 0 {
				s.log.Infof("TPM %s resumed with %s(STATE) after an orderly shutdown", fam.name, fam.startupName)
				break
			}
			s.log.Infof("%s(STATE) answered rc %#x (no orderly shutdown saved): starting with Startup(CLEAR)", fam.startupName, rc)
			if fam == family12 {
				// A TPM 1.2 refusing ST_STATE is in failure mode
				// until the next _TPM_Init (Part 3 §3.2).
				t.Reset()
			}
		} else {
			s.log.Infof("startup mode save: a new TPM has no state to resume, starting with Startup(CLEAR)")
		}
		fallthrough
	default:
		if rc := s.startup(fam.clear); rc != 0 {
			return nil, fmt.Errorf("%s(CLEAR) failed: rc %#x", fam.startupName, rc)
		}
	}
	s.presence(o)
	if o.MaintCmds && fam == family12 {
		s.log.Infof("maintcmds=1: the TPM 1.2 maintenance commands (TPM_CreateMaintenanceArchive, TPM_LoadMaintenanceArchive, TPM_KillMaintenanceFeature, TPM_LoadManuMaintPub, TPM_ReadManuMaintPub) are not implemented: they still answer TPM_BAD_ORDINAL")
	} else if o.MaintCmds {
		s.log.Infof("maintcmds=1 has no effect with tpm=%s: it has no maintenance commands", fam.name)
	}
	if len(o.HWInitPCR) > 0 {
		if err := s.initPCRs(o, c.HWPCR); err != nil {
			return nil, err
		}
	}
	// Startup itself changes persistent state (the reset counters).
	if changed := t.NVChanged(); s.saver != nil && (c.State == nil || changed) {
		if err := s.save(); err != nil {
			return nil, fmt.Errorf("saving the TPM's state: %w", err)
		}
	}
	// After that save: a new vTPM's first save is what makes the manager
	// know it, and the manager certifies only vTPMs it knows.
	if c.CertifyEK != nil {
		s.provisionEKCerts(c.CertifyEK)
		if t.NVChanged() && s.saver != nil {
			if err := s.save(); err != nil {
				return nil, fmt.Errorf("saving the TPM's state with its EK certificates: %w", err)
			}
		}
	}
	return s, nil
}

// TSC_PhysicalPresence's parameters (TPM Main Part 2 §4.9).
const (
	ppPresentCmd    = 0x0008 // TPM_PHYSICAL_PRESENCE_PRESENT
	ppNotPresentLck = 0x0014 // TPM_PHYSICAL_PRESENCE_NOTPRESENT | _LOCK
)

// presence plays the BIOS's part for TPM 1.2 physical presence (pp=)
// once the domain has started the TPM: it asserts presence for the guest
// or locks it until the next Startup(CLEAR).
func (s *Server) presence(o Options) {
	if s.fam != family12 {
		if o.PhysicalPresence {
			s.log.Infof("pp=1 has no effect with tpm=%s", s.fam.name)
		}
		return
	}
	if o.Startup == StartupDeactivated {
		if o.PhysicalPresence {
			s.log.Infof("pp=1 not applied with deactivated: the guest's firmware starts the TPM and asserts or locks physical presence")
		}
		return
	}
	pp, what := uint16(ppNotPresentLck), "physical presence locked until the next TPM_Startup(ST_CLEAR) (pp=0; pp=1 asserts it)"
	if o.PhysicalPresence {
		pp, what = ppPresentCmd, "pp=1: physical presence asserted for the guest until the next TPM_Startup(ST_CLEAR): it may enable, activate and clear its TPM (TPM_PhysicalEnable, TPM_PhysicalSetDeactivated, TPM_ForceClear)"
	}
	cmd := []byte{0x00, 0xC1, 0, 0, 0, 12, 0x40, 0, 0, 0x0A, byte(pp >> 8), byte(pp)}
	rsp := s.tpm.Process(cmd, 0)
	rc := uint32(0xffffffff)
	if len(rsp) >= 10 {
		rc = binary.BigEndian.Uint32(rsp[6:])
	}
	switch {
	case rc == 0:
		s.log.Infof("%s", what)
	case o.PhysicalPresence:
		s.log.Errorf("pp=1: TSC_PhysicalPresence(PRESENT) answered rc %#x: physical presence not asserted (locked since a TPM_SaveState the guest resumed, or disabled for good by the guest)", rc)
	default:
		// Already locked: a resumed TPM_SaveState keeps the lock.
		s.log.Debugf("TSC_PhysicalPresence(NOTPRESENT|LOCK) answered rc %#x", rc)
	}
}

// initPCRs copies hardware PCR values into the engine (hwinitpcr=).
func (s *Server) initPCRs(o Options, read func(int) ([20]byte, error)) error {
	if o.Startup == StartupDeactivated {
		s.log.Infof("hwinitpcr= has no effect with deactivated: the guest's %s resets the PCRs", s.fam.startupName)
		return nil
	}
	if read == nil {
		return errors.New("hwinitpcr= needs the manager domain (a vtpm device whose backend is the manager)")
	}
	for _, i := range o.HWInitPCR {
		v, err := read(i)
		if err != nil {
			return fmt.Errorf("hwinitpcr: reading hardware PCR %d through the manager: %w", i, err)
		}
		if err := s.tpm.InitPCR(i, v); err != nil {
			return err
		}
		s.log.Debugf("hwinitpcr: PCR %d = hardware SHA-1 %x", i, v)
	}
	s.log.Infof("hwinitpcr: %d PCRs copied from the hardware TPM", len(o.HWInitPCR))
	return nil
}

// startup sends the family's Startup(su) and returns its response code.
func (s *Server) startup(su uint16) uint32 {
	rsp := s.tpm.Process(s.fam.startupCommand(su), 0)
	if len(rsp) < 10 {
		return 0xffffffff
	}
	return binary.BigEndian.Uint32(rsp[6:])
}

// save stores the engine's state through the saver.
func (s *Server) save() error { return s.store(s.tpm.Save) }

// store stores the blob encode returns through the saver.
func (s *Server) store(encode func() ([]byte, error)) error {
	t := time.Now()
	blob, err := encode()
	if err == nil {
		err = s.saver.Save(blob)
	}
	s.stats.SaveTime += time.Since(t)
	if err != nil {
		s.stats.SaveErrors++
		return err
	}
	s.stats.Saves++
	s.stats.StateBytes = len(blob)
	s.saved = blob
	return nil
}

// Peer is the frontend a command came from.
type Peer struct {
	// Name identifies it in the log (tpmback's "domid/handle").
	Name string
	// Control is set for a frontend in the control domain
	// (platform.Control): only it may send platform commands.
	Control bool
}

// Handle runs one command from a frontend at the given locality. When the
// command changed durable state, the state is saved before the response
// is returned; if that fails the change is undone (the durable state as
// last stored is restored, PCRs and sessions stay) and the client gets
// TPM_RC_NV_UNAVAILABLE, or TPM_RC_NV_RATE when the manager asked to
// retry later: the command had no effect and may be retried.
//
// Saves are rationed (Options.SaveBudget): with the budget spent, a
// command that may change durable state (the engine's WritesNV) is answered
// TPM_RC_NV_RATE before it runs, so it has no effect at all, sessions
// included. Commands that change nothing durable are never refused: a
// guest cannot make this vTPM write its disk, and the manager the
// hardware TPM's NV memory, faster than the budget allows.
// A platform command (package platform) is performed for the control
// domain's frontend and answered TPM_RC_COMMAND_CODE for any other.
//
// A command at a locality outside Options.Localities is answered
// TPM_RC_LOCALITY without reaching the TPM, whoever sends it: the control
// domain's frontend passes an HVM guest's locality on, so it is the
// guest's. A TPM 1.2 (tpm=1.2) answers with its codes instead:
// TPM_BAD_LOCALITY, TPM_RETRY for TPM_RC_NV_RATE, and TPM_FAIL for
// TPM_RC_NV_UNAVAILABLE.
// Platform commands carry no locality (_TPM_Init is a signal,
// not a command) and are not checked.
func (s *Server) Handle(from Peer, locality uint8, cmd []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Commands++
	frontend := from.Name
	if cc, ok := platform.Code(cmd); ok {
		return s.platformCommand(from, cc, cmd)
	}
	if !s.localities.Allows(locality) {
		s.stats.LocalityRefused++
		// One line per frontend: a guest looping on a forbidden
		// locality must not fill the console.
		if !s.refusedFrom[frontend] {
			s.refusedFrom[frontend] = true
			s.log.Infof("%s: command at locality %d refused with %s (allowed: %v; the option is locality=); later refusals for it are counted, not logged",
				frontend, locality, s.fam.localityName, s.localities)
		} else {
			s.log.Debugf("%s: command at locality %d refused", frontend, locality)
		}
		return s.fam.response(s.fam.rcLocality)
	}
	if s.unsaved {
		if err := s.save(); err != nil {
			s.log.Errorf("%s: state still not saved (%v): answering %s", frontend, err, s.fam.nvUnavailableName)
			return s.fam.response(s.fam.rcNVUnavailable)
		}
		s.unsaved = false
		s.log.Infof("state saved after earlier failures")
	}
	if q := s.quoteFamilyOf(cmd); q != nil {
		return s.deepQuote(from, q, cmd)
	}
	now := s.now()
	if s.budget != nil && len(cmd) >= 10 && s.tpm.WritesNV(binary.BigEndian.Uint32(cmd[6:])) && !s.budget.Has(now) {
		s.stats.RateRefused++
		if !s.rationing {
			s.rationing = true
			s.log.Infof("%s: save budget spent (savebudget=%d, refill saverefill=%v): commands that may change durable state are answered %s until it refills; refusals are counted, not logged",
				frontend, int(s.budget.Burst()), s.refillRate, s.fam.rateName)
		}
		return s.fam.response(s.fam.rcRate)
	}
	rsp := s.tpm.Process(cmd, locality)
	if len(cmd) >= 10 && len(rsp) >= 10 {
		s.log.Debugf("%s: locality %d command %#x -> rc %#x (%d bytes)", frontend, locality,
			binary.BigEndian.Uint32(cmd[6:]), binary.BigEndian.Uint32(rsp[6:]), len(rsp))
	}
	if s.saver != nil && s.tpm.NVChanged() {
		// Spent even when the budget is empty: the first DA-protected
		// failure of a run is saved whatever the budget (refusing it
		// would tell the guest the password was wrong without counting
		// it), and once per run is no wear.
		s.budget.Spend(now)
		if err := s.save(); err != nil {
			rc, what := s.fam.rcNVUnavailable, s.fam.nvUnavailableName
			if proto.IsBusy(err) {
				rc, what = s.fam.rcRate, s.fam.rateName+" (the manager is rate-limited)"
				s.stats.RateRefused++
			}
			if rerr := s.tpm.RestorePersistent(s.saved); rerr != nil {
				// The change stays: a retry-later code would invite
				// the client to do it twice.
				s.unsaved = true
				s.log.Errorf("%s: saving the TPM's state failed (%v) and the change could not be undone (%v): answering %s until a save works", frontend, err, rerr, s.fam.nvUnavailableName)
				return s.fam.response(s.fam.rcNVUnavailable)
			}
			s.log.Errorf("%s: saving the TPM's state failed (%v): the command's change is undone, answering %s", frontend, err, what)
			return s.fam.response(rc)
		}
		if s.rationing {
			s.rationing = false
			s.log.Infof("%s: save budget refilled: %d commands answered %s so far", frontend, s.stats.RateRefused, s.fam.rateName)
		}
	}
	return rsp
}

// platformCommand performs a platform command for the control domain.
func (s *Server) platformCommand(from Peer, cc uint32, cmd []byte) []byte {
	if !from.Control {
		s.log.Infof("%s: platform command %#x from a frontend outside the control domain: refused (TPM_RC_COMMAND_CODE)", from.Name, cc)
		return platform.Response(platform.RCCommandCode)
	}
	switch cc {
	case platform.CCPlatformReset:
		if len(cmd) != 10 {
			return platform.Response(platform.RCSize)
		}
		s.tpm.Reset()
		s.stats.PlatformResets++
		s.log.Infof("%s: platform reset (_TPM_Init): sessions and loaded objects gone, PCRs reset at the next TPM2_Startup(CLEAR)", from.Name)
		return platform.Response(platform.RCSuccess)
	}
	return platform.Response(platform.RCCommandCode)
}

// Close waits for the command in progress (and its save) to finish,
// stores the state once more as the TPM stops (SaveAtStop: what the
// engine writes lazily, the dictionary-attack counters, the clock and a
// guest's Shutdown(STATE), and the mark that nothing was lost), and stops
// serving: later calls to Handle and Stats block for good, as the domain
// is about to end. It returns the final counters and whether a change is
// still unsaved (a save that failed and never succeeded since); a final
// save that fails leaves only what is written lazily behind, and is
// counted in SaveErrors.
func (s *Server) Close() (st Stats, unsaved bool) {
	s.mu.Lock()
	if s.saver != nil && !s.unsaved {
		if err := s.store(s.tpm.SaveAtStop); err != nil {
			s.log.Errorf("storing the state at stop failed (%v): the next start counts a dictionary-attack failure if one had failed since the last save, and reports the TPM clock unsafe", err)
		}
	}
	return s.stats, s.unsaved
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
