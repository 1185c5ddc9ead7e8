// Command vtpmd serves one instance of the pure-Go TPM 2.0 engine
// (emulator/tpm2) or, with -family 1.2, of the TPM 1.2 engine
// (emulator/tpm12) to host clients over the two protocols software TPMs
// speak:
//
//   - the Microsoft/TCG simulator protocol ("mssim", TpmTcpProtocol.h of
//     the TCG reference implementation): a command port and a platform
//     port at command port + 1; used by tpm2-tss's mssim TCTI and go-tpm's
//     transport/tcp;
//   - swtpm's socket protocol: raw TPM commands on a data socket and the
//     control channel of swtpm's tpm_ioctl.h (CMD_*) on a second socket;
//     used by tpm2-tss's swtpm TCTI and QEMU's -tpmdev emulator, and, for
//     a TPM 1.2, by TrouSerS' tcsd -e (TCSD_TCP_DEVICE_PORT set to the
//     -swtpm port).
//
// The persistent state lives in one file in the -state directory
// (tpm2-state.bin or tpm12-state.bin), written atomically (new file,
// fsync, rename, fsync of the directory); a lock file keeps a second
// daemon off the same directory. SIGTERM and SIGINT
// store the state and exit. A directory holding the other family's state
// is refused, never converted or replaced.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xenvtpm/xenvtpm/internal/connset"
	"github.com/xenvtpm/xenvtpm/swtpm"
)

func main() {
	stateDir := flag.String("state", "", "directory holding the TPM state (empty: state lives in memory only)")
	mssim := flag.String("mssim", "127.0.0.1:2321", "mssim command address HOST:PORT; the platform port is PORT+1; empty disables")
	swtpm := flag.String("swtpm", "", "swtpm raw-command address HOST:PORT; empty disables")
	swtpmCtrl := flag.String("swtpm-ctrl", "", "swtpm control channel HOST:PORT or unix:PATH; empty disables")
	fam := flag.String("family", "2.0", "TPM family served: 2.0 or 1.2")
	startup := flag.Bool("startup", false, "send Startup(CLEAR) at power-on, like swtpm's startup-clear flag")
	flag.BoolVar(&verbose, "v", false, "log control-channel requests and TPM command codes")
	flag.Parse()

	f, err := parseFamily(*fam)
	if err != nil {
		log.Fatalf("vtpmd: %v", err)
	}
	d, err := newDaemon(*stateDir, f, *startup)
	if err != nil {
		log.Fatalf("vtpmd: %v", err)
	}
	if err := d.listen(*mssim, *swtpm, *swtpmCtrl); err != nil {
		d.close()
		log.Fatalf("vtpmd: %v", err)
	}
	for _, a := range d.addrs {
		log.Printf("vtpmd: listening: %s", a)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if err := d.close(); err != nil {
		log.Fatalf("vtpmd: %v", err)
	}
}

// verbose enables per-request logging (-v).
var verbose bool

// daemon owns the engine; mu serializes every access to it because the
// engine is single-caller.
type daemon struct {
	mu        sync.Mutex
	family    family
	tpm       engine
	store     *store
	powered   bool
	closed    bool // the state is stored for good: no command runs any more
	startup   bool
	swtpm     *swtpm.Server
	mssim     connset.Set // the mssim command channels
	listeners []net.Listener
	addrs     []string
	wg        sync.WaitGroup
}

func newDaemon(stateDir string, f family, startup bool) (*daemon, error) {
	d := &daemon{family: f, powered: true, startup: startup, mssim: connset.Set{Blocking: blockingData}}
	d.swtpm = swtpm.New(swtpm.Config{TPM: swtpmTPM{d}, Logf: log.Printf, Verbose: verbose, BlockingData: blockingData})
	var blob []byte
	if stateDir != "" {
		s, err := openStore(stateDir, f.stateFile())
		if err != nil {
			return nil, err
		}
		d.store = s
		if s.exists(f.other().stateFile()) {
			s.unlock()
			return nil, fmt.Errorf("state in %s: %w: it holds a TPM %s state (%s), this daemon serves TPM %s (-family %s)",
				stateDir, errOtherFamily, f.other(), f.other().stateFile(), f, f)
		}
		if blob, err = s.load(); err != nil {
			s.unlock()
			return nil, err
		}
	}
	t, err := f.newEngine(blob)
	if err != nil {
		if d.store != nil {
			d.store.unlock()
		}
		return nil, fmt.Errorf("state in %s: %w", stateDir, checkBlobFamily(f, blob, err))
	}
	d.tpm = t
	if blob == nil {
		// A freshly manufactured TPM: persist its seeds now so a crash
		// before the first NV write cannot change the EK.
		if err := d.saveLocked(); err != nil {
			return nil, err
		}
	}
	d.powerOnLocked()
	return d, nil
}

func (d *daemon) powerOnLocked() {
	d.powered = true
	if d.startup {
		d.tpm.Process(d.family.startupCommand(), 0)
	}
}

// process runs one command; the state is stored when it changed.
func (d *daemon) process(cmd []byte, locality uint8) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.powered || d.closed {
		return swtpm.ErrorResponse(cmd, swtpm.RCFailure, swtpm.ResultFail)
	}
	rsp := d.tpm.Process(cmd, locality)
	if verbose && len(cmd) >= 10 && len(rsp) >= 10 {
		log.Printf("vtpmd: cc 0x%x locality %d -> rc 0x%x", binary.BigEndian.Uint32(cmd[6:]), locality, binary.BigEndian.Uint32(rsp[6:]))
	}
	if d.tpm.NVChanged() {
		if err := d.saveLocked(); err != nil {
			log.Printf("vtpmd: storing state: %v", err)
		}
	}
	return rsp
}

// save stores the state (swtpm's CMD_STORE_VOLATILE); with stop, as the
// TPM stops (swtpm's CMD_SHUTDOWN).
func (d *daemon) save(stop bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		// The state file's lock is released: another daemon may own it.
		return errStopped
	}
	var err error
	if stop {
		err = d.stopLocked()
	} else {
		err = d.saveLocked()
	}
	if err != nil {
		log.Printf("vtpmd: storing state: %v", err)
	}
	return err
}

func (d *daemon) saveLocked() error {
	if d.store == nil {
		return nil
	}
	blob, err := d.tpm.Save()
	if err != nil {
		return err
	}
	return d.store.save(blob)
}

// stopLocked stores the state as the TPM stops (power off, the daemon
// ending): with what the engine writes lazily, the DA counters and the
// clock, and marked as an orderly stop.
func (d *daemon) stopLocked() error {
	if d.store == nil {
		return nil
	}
	blob, err := d.tpm.SaveAtStop()
	if err != nil {
		return err
	}
	return d.store.save(blob)
}

// reset models _TPM_Init (power cycle or platform reset).
func (d *daemon) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tpm.Reset()
	d.powerOnLocked()
}

func (d *daemon) listen(mssim, swtpm, swtpmCtrl string) error {
	if mssim != "" {
		host, port, err := splitHostPortNum(mssim)
		if err != nil {
			return fmt.Errorf("-mssim: %w", err)
		}
		if err := d.serve("tcp", mssim, d.serveMssimCommand); err != nil {
			return err
		}
		if err := d.serve("tcp", net.JoinHostPort(host, fmt.Sprint(port+1)), d.serveMssimPlatform); err != nil {
			return err
		}
	}
	if swtpm != "" {
		if err := d.serve("tcp", swtpm, d.swtpm.ServeData); err != nil {
			return err
		}
	}
	if swtpmCtrl != "" {
		network, addr := "tcp", swtpmCtrl
		if strings.HasPrefix(swtpmCtrl, "unix:") {
			network, addr = "unix", strings.TrimPrefix(swtpmCtrl, "unix:")
			_ = os.Remove(addr)
		}
		if err := d.serve(network, addr, d.swtpm.ServeControl); err != nil {
			return err
		}
	}
	return nil
}

func splitHostPortNum(a string) (string, int, error) {
	host, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscanf(p, "%d", &port); err != nil || port <= 0 || port >= 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

func (d *daemon) serve(network, addr string, handle func(net.Conn)) error {
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	d.listeners = append(d.listeners, l)
	d.addrs = append(d.addrs, network+":"+l.Addr().String())
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				log.Printf("vtpmd: accept: %v", err)
				continue
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return nil
}

// errStopped answers what would store the state once the daemon stopped.
var errStopped = errors.New("vtpmd: stopped: the state is stored and its lock released")

// blockingData is how many swtpm data channels, and how many mssim
// command channels, are read by a thread blocked in the kernel
// (internal/connset): a host's QEMU instances and tools, with a bound
// against a local client opening thousands.
const blockingData = 64

// closeGrace is how long stopping waits for a response a client does not
// read.
const closeGrace = 5 * time.Second

// close stops listening, ends the command channels (swtpm data, mssim
// command) once the commands in progress are answered, stores the state
// and releases the lock. The TPM is then off for good, so nothing can
// change what was stored.
func (d *daemon) close() error {
	for _, l := range d.listeners {
		l.Close()
	}
	d.wg.Wait()
	// Both kinds of channel end together: a client that stops reading on
	// each holds the stop for one grace period, not two.
	var ends sync.WaitGroup
	ends.Go(d.swtpm.CloseData)
	ends.Go(func() { d.mssim.Close(closeGrace) })
	ends.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	err := d.stopLocked()
	d.closed = true
	if d.store != nil {
		d.store.unlock()
	}
	return err
}
