package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log"
	"net"
)

// Largest TPM command accepted on any channel; the engine itself answers
// TPM_RC_COMMAND_SIZE above 4096, but a framing length beyond this is a
// broken client and the connection is dropped.
const maxFrame = 64 * 1024

// mssim command-port codes (TpmTcpProtocol.h).
const (
	msSendCommand          = 8
	msRemoteHandshake      = 15
	msSetAlternativeResult = 16
	msSessionEnd           = 20
	msStop                 = 21
)

// mssim platform-port codes.
const (
	msPowerOn       = 1
	msPowerOff      = 2
	msReset         = 17
	msRestart       = 18
	msGetCmdRspSize = 25
	msACTGetSignal  = 26
	msSetFWHash     = 35
	msSetFWSVN      = 36
)

func readU32(r io.Reader) (uint32, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

func putU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func (d *daemon) serveMssimCommand(conn net.Conn) {
	c, ok := d.mssim.Add(conn)
	if !ok {
		return
	}
	defer d.mssim.Done(conn)
	r := bufio.NewReader(quickAck(c))
	for {
		code, err := readU32(r)
		if err != nil {
			return
		}
		switch code {
		case msSendCommand:
			loc, err := r.ReadByte()
			if err != nil {
				return
			}
			n, err := readU32(r)
			if err != nil || n > maxFrame {
				return
			}
			cmd := make([]byte, n)
			if _, err := io.ReadFull(r, cmd); err != nil {
				return
			}
			rsp := d.process(cmd, loc)
			out := putU32(make([]byte, 0, len(rsp)+8), uint32(len(rsp)))
			out = append(out, rsp...)
			out = putU32(out, 0)
			// One write: go-tpm's client reads the body with a single Read.
			if _, err := c.Write(out); err != nil {
				return
			}
		case msRemoteHandshake:
			if _, err := readU32(r); err != nil {
				return
			}
			// Server version 1; flags: platform available (1), raw mode
			// (4).
			if _, err := c.Write(putU32(putU32(putU32(nil, 1), 1|4), 0)); err != nil {
				return
			}
		case msSetAlternativeResult:
			if _, err := readU32(r); err != nil {
				return
			}
			if _, err := c.Write(putU32(nil, 0)); err != nil {
				return
			}
		case msSessionEnd, msStop:
			return
		default:
			log.Printf("vtpmd: mssim: unsupported command-port code %d; closing", code)
			return
		}
	}
}

func (d *daemon) serveMssimPlatform(c net.Conn) {
	r := bufio.NewReader(quickAck(c))
	for {
		code, err := readU32(r)
		if err != nil {
			return
		}
		var reply []byte
		switch code {
		case msPowerOn:
			d.mu.Lock()
			if !d.powered {
				d.tpm.Reset()
				d.powerOnLocked()
			}
			d.mu.Unlock()
		case msPowerOff:
			d.mu.Lock()
			if err := d.stopLocked(); err != nil {
				log.Printf("vtpmd: storing state: %v", err)
			}
			d.tpm.Reset()
			d.powered = false
			d.mu.Unlock()
		case msReset, msRestart:
			d.reset()
		case msGetCmdRspSize:
			reply = putU32(putU32(nil, 4096), 4096)
		case msACTGetSignal:
			if _, err := readU32(r); err != nil {
				return
			}
			reply = putU32(nil, 0)
		case msSetFWHash, msSetFWSVN:
			n, err := readU32(r)
			if err != nil || n > maxFrame {
				return
			}
			if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
				return
			}
		case msSessionEnd, msStop:
			return
		default:
			// PP, cancel, NV on/off, key cache, failure-mode test: no
			// state to change in this TPM; acknowledge.
		}
		if _, err := c.Write(putU32(reply, 0)); err != nil {
			return
		}
	}
}

// swtpmTPM is the daemon as the swtpm protocol's TPM.
type swtpmTPM struct{ d *daemon }

func (t swtpmTPM) Execute(_ context.Context, cmd []byte, locality uint8) []byte {
	return t.d.process(cmd, locality)
}

// Init models _TPM_Init (power-on or platform reset).
func (t swtpmTPM) Init() error {
	t.d.reset()
	return nil
}

func (t swtpmTPM) Stop() error {
	d := t.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tpm.Reset()
	d.powered = false
	return nil
}

func (t swtpmTPM) Shutdown() error      { return t.d.save(true) }
func (t swtpmTPM) StoreVolatile() error { return t.d.save(false) }
