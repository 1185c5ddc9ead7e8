package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"syscall"
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

func (d *daemon) serveMssimCommand(c net.Conn) {
	r := bufio.NewReader(c)
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
	r := bufio.NewReader(c)
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
			if err := d.saveLocked(); err != nil {
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

// serveRaw is swtpm's data channel: a TPM command in, its response out,
// framed only by the TPM header's size field.
func (d *daemon) serveRaw(c net.Conn) {
	r := bufio.NewReader(c)
	hdr := make([]byte, 10)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[2:])
		if n < 10 || n > maxFrame {
			// Unframeable: answer from the header alone, then drop.
			c.Write(d.process(hdr, d.getLocality()))
			return
		}
		cmd := make([]byte, n)
		copy(cmd, hdr)
		if _, err := io.ReadFull(r, cmd[10:]); err != nil {
			return
		}
		if _, err := c.Write(d.process(cmd, d.getLocality())); err != nil {
			return
		}
	}
}

func (d *daemon) getLocality() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.locality
}

// swtpm control-channel commands and capability bits (tpm_ioctl.h).
const (
	ctrlGetCapability     = 1
	ctrlInit              = 2
	ctrlShutdown          = 3
	ctrlGetTPMEstablished = 4
	ctrlSetLocality       = 5
	ctrlCancelTPMCmd      = 9
	ctrlStoreVolatile     = 10
	ctrlResetEstablished  = 11
	ctrlStop              = 14
	ctrlGetConfig         = 15
	ctrlSetDataFD         = 16
	ctrlSetBufferSize     = 17

	capInit             = 1 << 0
	capShutdown         = 1 << 1
	capGetEstablished   = 1 << 2
	capSetLocality      = 1 << 3
	capCancel           = 1 << 5
	capStoreVolatile    = 1 << 6
	capResetEstablished = 1 << 7
	capStop             = 1 << 10
	capGetConfig        = 1 << 11
	capSetDataFD        = 1 << 12
	capSetBufferSize    = 1 << 13

	// ptmFail is TPM_FAIL, swtpm's generic error result.
	ptmFail = 9
)

// serveCtrl is swtpm's control channel. On a Unix socket it also accepts
// CMD_SET_DATAFD, through which QEMU hands over the data channel.
func (d *daemon) serveCtrl(c net.Conn) {
	uc, _ := c.(*net.UnixConn)
	buf := make([]byte, 4096)
	for {
		n, fds, err := readCtrl(c, uc, buf)
		if err != nil {
			return
		}
		if len(fds) > 1 {
			for _, fd := range fds[1:] {
				syscall.Close(fd)
			}
		}
		if n < 4 {
			return
		}
		code := binary.BigEndian.Uint32(buf)
		body := buf[4:n]
		if verbose {
			log.Printf("vtpmd: ctrl %d (%d bytes, %d fds)", code, n, len(fds))
		}
		var rsp []byte
		switch code {
		case ctrlGetCapability:
			caps := uint64(capInit | capShutdown | capGetEstablished | capSetLocality | capCancel |
				capStoreVolatile | capResetEstablished | capStop | capGetConfig | capSetBufferSize)
			if uc != nil {
				caps |= capSetDataFD
			}
			rsp = binary.BigEndian.AppendUint64(nil, caps)
		case ctrlInit:
			d.reset()
			rsp = putU32(nil, 0)
		case ctrlShutdown, ctrlStoreVolatile:
			d.mu.Lock()
			err := d.saveLocked()
			d.mu.Unlock()
			res := uint32(0)
			if err != nil {
				log.Printf("vtpmd: storing state: %v", err)
				res = ptmFail
			}
			rsp = putU32(nil, res)
		case ctrlGetTPMEstablished:
			// struct ptm_est: result, the bit, and C padding to 8 bytes
			// (QEMU reads sizeof(ptm_est)).
			rsp = append(putU32(nil, 0), 0, 0, 0, 0)
		case ctrlSetLocality:
			res := uint32(0)
			if len(body) < 1 || body[0] > 4 {
				res = ptmFail
			} else {
				d.mu.Lock()
				d.locality = body[0]
				d.mu.Unlock()
			}
			rsp = putU32(nil, res)
		case ctrlCancelTPMCmd, ctrlResetEstablished:
			rsp = putU32(nil, 0)
		case ctrlStop:
			d.mu.Lock()
			d.tpm.Reset()
			d.powered = false
			d.mu.Unlock()
			rsp = putU32(nil, 0)
		case ctrlGetConfig:
			rsp = putU32(putU32(nil, 0), 0)
		case ctrlSetBufferSize:
			rsp = putU32(putU32(putU32(putU32(nil, 0), 4096), 4096), 4096)
		case ctrlSetDataFD:
			res := uint32(ptmFail)
			if len(fds) > 0 {
				if dc, err := net.FileConn(os.NewFile(uintptr(fds[0]), "swtpm-data")); err == nil {
					res = 0
					go func() {
						defer dc.Close()
						d.serveRaw(dc)
					}()
				}
				syscall.Close(fds[0])
			}
			rsp = putU32(nil, res)
		default:
			rsp = putU32(nil, ptmFail)
		}
		if _, err := c.Write(rsp); err != nil {
			return
		}
	}
}

// readCtrl reads one control message. swtpm's protocol has no framing:
// each request arrives in one write, so one read is one request.
func readCtrl(c net.Conn, uc *net.UnixConn, buf []byte) (int, []int, error) {
	if uc == nil {
		n, err := c.Read(buf)
		return n, []int{}, err
	}
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, nil, io.EOF
	}
	var fds []int
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return 0, nil, fmt.Errorf("control message: %w", err)
		}
		for _, m := range msgs {
			f, err := syscall.ParseUnixRights(&m)
			if err == nil {
				fds = append(fds, f...)
			}
		}
	}
	if fds == nil {
		fds = []int{}
	}
	return n, fds, nil
}
