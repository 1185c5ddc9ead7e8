package hwtpm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpmutil"
)

// The rollback counter on TPM 1.2 is a monotonic counter (TPM 1.2 Part 1,
// 17; Part 3, 25). Unlike an NV index that the owner can rewrite, it only
// moves forward, and a counter created after another was released starts
// above every value any counter of the TPM ever had: nobody, the owner
// included, can make an old disk acceptable again. The TPM chooses a new
// counter's handle, so the manager finds its counter by label: the one
// labelled counterLabel with the highest value (a second one, made by
// someone else, can only be higher, which refuses the disk: denial of
// service, never rollback). Its authorisation data is owner_auth=, so
// only the owner can increment it.
//
// TPM 1.2 lets one counter be incremented per TPM start-up: if other
// software incremented another counter since, IncrementCounter fails with
// TPM_BAD_COUNTER until the host reboots; the error says so.

// counterLabel is the rollback counter's 4-byte label.
const counterLabel = "XVTM"

const (
	tag12RquCommand   = 0x00C1 // TPM_TAG_RQU_COMMAND
	tag12RquAuth1     = 0x00C2 // TPM_TAG_RQU_AUTH1_COMMAND
	ord12OIAP         = 0x0000000A
	ord12OSAP         = 0x0000000B
	ord12CreateCtr    = 0x000000DC // TPM_ORD_CreateCounter
	ord12IncrementCtr = 0x000000DD // TPM_ORD_IncrementCounter
	ord12ReadCtr      = 0x000000DE // TPM_ORD_ReadCounter
	cap12Handle       = 0x14       // TPM_CAP_HANDLE
	rt12Counter       = 0x06       // TPM_RT_COUNTER
	et12Owner         = 0x0002     // TPM_ET_OWNER
	kh12Owner         = 0x40000001 // TPM_KH_OWNER
	tag12CounterValue = 0x000E     // TPM_TAG_COUNTER_VALUE
)

// counterValue is TPM_COUNTER_VALUE.
type counterValue struct {
	Tag   uint16
	Label [4]byte
	Count uint32
}

// run12 sends one command and returns the response parameters, or an
// rc12Error naming name.
func (t *TPM12) run12(name string, tag uint16, ord uint32, in ...any) ([]byte, error) {
	rsp, rc, err := tpmutil.RunCommand(t.rw, tpmutil.Tag(tag), tpmutil.Command(ord), in...)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: %s: %w", name, err)
	}
	if rc != tpmutil.RCSuccess {
		return nil, rc12Error{cmd: name, rc: uint32(rc)}
	}
	return rsp, nil
}

// authSession is an OIAP or OSAP session: its handle, the TPM's last
// even nonce and the HMAC key (the entity's secret for OIAP, the shared
// secret for OSAP).
type authSession struct {
	handle    uint32
	nonceEven [20]byte
	key       [20]byte
}

func (t *TPM12) oiap(secret [20]byte) (*authSession, error) {
	rsp, err := t.run12("TPM_OIAP", tag12RquCommand, ord12OIAP)
	if err != nil {
		return nil, err
	}
	s := &authSession{key: secret}
	if _, err := tpmutil.Unpack(rsp, &s.handle, &s.nonceEven); err != nil {
		return nil, fmt.Errorf("hwtpm: TPM_OIAP response: %w", err)
	}
	return s, nil
}

// osap opens an OSAP session for an entity whose secret is secret; the
// shared secret is HMAC-SHA1(secret, nonceEvenOSAP ‖ nonceOddOSAP).
func (t *TPM12) osap(entityType uint16, entity uint32, secret [20]byte) (*authSession, error) {
	var oddOSAP [20]byte
	if _, err := rand.Read(oddOSAP[:]); err != nil {
		return nil, err
	}
	rsp, err := t.run12("TPM_OSAP", tag12RquCommand, ord12OSAP, entityType, entity, oddOSAP)
	if err != nil {
		return nil, err
	}
	s := &authSession{}
	var evenOSAP [20]byte
	if _, err := tpmutil.Unpack(rsp, &s.handle, &s.nonceEven, &evenOSAP); err != nil {
		return nil, fmt.Errorf("hwtpm: TPM_OSAP response: %w", err)
	}
	m := hmac.New(sha1.New, secret[:])
	m.Write(evenOSAP[:])
	m.Write(oddOSAP[:])
	copy(s.key[:], m.Sum(nil))
	return s, nil
}

// auth1 runs an AUTH1 command in session s, which ends with it
// (continueAuthSession false). The HMAC covers ordinal ‖ params (the 1S
// digest of TPM 1.2 Part 1, 13; these commands have no key handle
// outside it). The response's HMAC, over
// returnCode ‖ ordinal ‖ the output parameters (the first outLen bytes
// of the response), is checked before the output is returned.
func (t *TPM12) auth1(name string, ord uint32, s *authSession, params []any, outLen int) ([]byte, error) {
	return t.auth1Handles(name, ord, nil, s, params, outLen)
}

// auth1Handles is auth1 for a command with handles before its
// parameters, which the HMAC does not cover; outLen < 0 takes all the
// response before its authorisation as output.
func (t *TPM12) auth1Handles(name string, ord uint32, handles []any, s *authSession, params []any, outLen int) ([]byte, error) {
	var nonceOdd [20]byte
	if _, err := rand.Read(nonceOdd[:]); err != nil {
		return nil, err
	}
	pb, err := tpmutil.Pack(append([]any{ord}, params...)...)
	if err != nil {
		return nil, err
	}
	digest := sha1.Sum(pb)
	const cont = byte(0)
	mac := hmac.New(sha1.New, s.key[:])
	mac.Write(digest[:])
	mac.Write(s.nonceEven[:])
	mac.Write(nonceOdd[:])
	mac.Write([]byte{cont})
	var authValue [20]byte
	copy(authValue[:], mac.Sum(nil))
	in := append(append(append([]any{}, handles...), params...), s.handle, nonceOdd, cont, authValue)
	rsp, err := t.run12(name, tag12RquAuth1, ord, in...)
	if err != nil {
		return nil, err
	}
	if outLen < 0 {
		outLen = max(len(rsp)-41, 0)
	}
	if len(rsp) != outLen+20+1+20 {
		return nil, fmt.Errorf("hwtpm: %s: %d-byte response, want %d", name, len(rsp), outLen+41)
	}
	out, nonceEven, contOut, resAuth := rsp[:outLen], rsp[outLen:outLen+20], rsp[outLen+20], rsp[outLen+21:]
	rd := sha1.New()
	rd.Write(make([]byte, 4)) // returnCode TPM_SUCCESS
	rd.Write(binary.BigEndian.AppendUint32(nil, ord))
	rd.Write(out)
	mac = hmac.New(sha1.New, s.key[:])
	mac.Write(rd.Sum(nil))
	mac.Write(nonceEven)
	mac.Write(nonceOdd[:])
	mac.Write([]byte{contOut})
	if !hmac.Equal(mac.Sum(nil), resAuth) {
		return nil, fmt.Errorf("hwtpm: %s: the response's authorisation HMAC does not verify", name)
	}
	return out, nil
}

// readCtr is TPM_ReadCounter.
func (t *TPM12) readCtr(id uint32) (counterValue, error) {
	var cv counterValue
	rsp, err := t.run12("TPM_ReadCounter", tag12RquCommand, ord12ReadCtr, id)
	if err != nil {
		return cv, err
	}
	if _, err := tpmutil.Unpack(rsp, &cv); err != nil || cv.Tag != tag12CounterValue {
		return cv, fmt.Errorf("hwtpm: TPM_ReadCounter(%#x): malformed TPM_COUNTER_VALUE % x", id, rsp)
	}
	return cv, nil
}

// findCounter looks for the rollback counter among the TPM's counters
// (TPM_GetCapability(TPM_CAP_HANDLE, TPM_RT_COUNTER)).
func (t *TPM12) findCounter() (uint32, uint32, error) {
	raw, err := tpm.GetCapabilityRaw(t.rw, cap12Handle, rt12Counter)
	if err != nil {
		return 0, 0, fmt.Errorf("hwtpm: TPM_GetCapability(handles, counters): %w", err)
	}
	if len(raw) < 2 || len(raw) != 2+4*int(binary.BigEndian.Uint16(raw)) {
		return 0, 0, fmt.Errorf("hwtpm: TPM_GetCapability(handles, counters): malformed list % x", raw)
	}
	var best, bestVal uint32
	found := false
	for i := range int(binary.BigEndian.Uint16(raw)) {
		id := binary.BigEndian.Uint32(raw[2+4*i:])
		cv, err := t.readCtr(id)
		if err != nil {
			return 0, 0, err
		}
		if string(cv.Label[:]) == counterLabel && (!found || cv.Count > bestVal) {
			best, bestVal, found = id, cv.Count, true
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("%w: no TPM 1.2 monotonic counter labelled %q", ErrNoCounter, counterLabel)
	}
	return best, bestVal, nil
}

// CounterIndex is the TPM's handle of the rollback counter (0 before it
// was found or created).
func (t *TPM12) CounterIndex() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.countID
}

// ReadCounter returns the rollback counter's value; ErrNoCounter if the
// TPM has none.
func (t *TPM12) ReadCounter() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readCounter()
}

func (t *TPM12) readCounter() (uint64, error) {
	if t.counted {
		cv, err := t.readCtr(t.countID)
		if err == nil && string(cv.Label[:]) == counterLabel {
			return uint64(cv.Count), nil
		}
		if err != nil && !isRC12(err, rc12BadCounter) {
			return 0, err
		}
		t.counted = false // released behind our back: look again
	}
	id, v, err := t.findCounter()
	if err != nil {
		return 0, err
	}
	t.countID, t.counted = id, true
	return uint64(v), nil
}

// CreateCounter creates the rollback counter (TPM_CreateCounter in an
// OSAP session for the owner, its secret owner_auth= passed encrypted as
// TPM 1.2 Part 1's ADIP requires) unless the TPM already has one, and
// returns its value: one NV write, at format time only.
func (t *TPM12) CreateCounter() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, err := t.readCounter(); !errors.Is(err, ErrNoCounter) {
		return v, err
	}
	owner := t.cfg.OwnerAuth.TPM12()
	s, err := t.osap(et12Owner, kh12Owner, owner)
	if err != nil {
		return 0, err
	}
	// encAuth = counter secret XOR SHA-1(shared secret ‖ nonceEven).
	pad := sha1.Sum(append(s.key[:], s.nonceEven[:]...))
	var encAuth [20]byte
	for i := range encAuth {
		encAuth[i] = owner[i] ^ pad[i]
	}
	var label [4]byte
	copy(label[:], counterLabel)
	out, err := t.auth1("TPM_CreateCounter", ord12CreateCtr, s, []any{encAuth, label}, 4+10)
	if err != nil {
		if isRC12(err, rc12AuthFail) {
			return 0, fmt.Errorf("hwtpm: TPM_CreateCounter: owner_auth refused: %w", err)
		}
		return 0, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	var id uint32
	var cv counterValue
	if _, err := tpmutil.Unpack(out, &id, &cv); err != nil {
		return 0, fmt.Errorf("hwtpm: TPM_CreateCounter response: %w", err)
	}
	t.countID, t.counted = id, true
	return uint64(cv.Count), nil
}

// IncrementCounter is TPM_IncrementCounter in an OIAP session with the
// counter's secret: one hardware NV write.
func (t *TPM12) IncrementCounter() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.counted {
		if _, err := t.readCounter(); err != nil {
			return err
		}
	}
	s, err := t.oiap(t.cfg.OwnerAuth.TPM12())
	if err != nil {
		return err
	}
	_, err = t.auth1("TPM_IncrementCounter", ord12IncrementCtr, s, []any{t.countID}, 10)
	switch {
	case err == nil:
		return nil
	case isRC12(err, rc12BadCounter):
		t.counted = false // or it was released: look it up next time
		return fmt.Errorf("%w (TPM 1.2 increments only one monotonic counter per TPM start-up: other software incremented another since, or released this one; reboot the host)", err)
	case isRC12(err, rc12AuthFail):
		return fmt.Errorf("%w (the counter's secret is the owner_auth= it was created with)", err)
	}
	return fmt.Errorf("%w%s", err, lockoutHint(err))
}
