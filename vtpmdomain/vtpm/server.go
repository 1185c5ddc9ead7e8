package vtpm

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/xenvtpm/xenvtpm/emulator/tpm2"
)

// Logger is what the server logs through.
type Logger interface {
	Infof(format string, a ...any)
	Debugf(format string, a ...any)
	Errorf(format string, a ...any)
}

// Server owns one engine instance. Frontends may call Handle concurrently;
// commands run one at a time, as on a real TPM.
type Server struct {
	mu  sync.Mutex
	tpm *tpm2.TPM
	log Logger
	// Commands counts processed commands.
	Commands uint64
}

// NewServer manufactures an engine (state is not persisted yet) and starts
// it as the options say.
func NewServer(o Options, log Logger) (*Server, error) {
	t, err := tpm2.New(tpm2.Config{})
	if err != nil {
		return nil, err
	}
	s := &Server{tpm: t, log: log}
	switch o.Startup {
	case StartupDeactivated:
		log.Infof("TPM left un-started (deactivated): the guest must send TPM2_Startup")
	case StartupSave:
		// A freshly manufactured TPM has no saved state to resume.
		log.Infof("startup mode save: no saved state exists yet, starting with Startup(CLEAR)")
		fallthrough
	default:
		if rc := s.startup(0x0000); rc != 0 {
			return nil, fmt.Errorf("TPM2_Startup(CLEAR) failed: rc %#x", rc)
		}
	}
	return s, nil
}

// startup sends TPM2_Startup(su) and returns its response code.
func (s *Server) startup(su uint16) uint32 {
	cmd := make([]byte, 12)
	binary.BigEndian.PutUint16(cmd[0:], 0x8001) // TPM_ST_NO_SESSIONS
	binary.BigEndian.PutUint32(cmd[2:], 12)
	binary.BigEndian.PutUint32(cmd[6:], 0x144) // TPM_CC_Startup
	binary.BigEndian.PutUint16(cmd[10:], su)
	rsp := s.tpm.Process(cmd, 0)
	if len(rsp) < 10 {
		return 0xffffffff
	}
	return binary.BigEndian.Uint32(rsp[6:])
}

// Handle runs one command from a frontend at the given locality.
func (s *Server) Handle(frontend string, locality uint8, cmd []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Commands++
	rsp := s.tpm.Process(cmd, locality)
	if len(cmd) >= 10 && len(rsp) >= 10 {
		s.log.Debugf("%s: locality %d command %#x -> rc %#x (%d bytes)", frontend, locality,
			binary.BigEndian.Uint32(cmd[6:]), binary.BigEndian.Uint32(rsp[6:]), len(rsp))
	}
	return rsp
}
