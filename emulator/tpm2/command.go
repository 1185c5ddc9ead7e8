package tpm2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	gt "github.com/google/go-tpm/tpm2"
)

// authRole is the role a handle is authorized in, Part 1 §19.2.
type authRole uint8

const (
	roleUser authRole = iota
	roleAdmin
	roleDup
)

// cmdDef is one row of the command table. The handle layout is read from
// the go-tpm command structure; the handler and roles are ours.
type cmdDef struct {
	cc       uint32
	name     string
	nHandles int
	nAuth    int
	anon     []bool // handle has an empty Name (sequence objects)
	roles    []authRole
	// decrypt/encrypt: the first command/response parameter is a TPM2B and
	// so may be protected by a decrypt/encrypt session (Part 1 §21).
	decrypt   bool
	encrypt   bool
	rspHandle bool
	run       func(t *TPM, c *call) (*reply, error)
	// generic is the go-tpm-decoder path of commands whose run is a
	// hand-written fast path (fast.go); tests compare the two.
	generic func(t *TPM, c *call) (*reply, error)
}

// forceGeneric makes execute use the go-tpm-decoder path even where a
// fast path exists; tests set it to compare the two.
var forceGeneric bool

// commandTable maps TPM_CC to its definition; populated by init functions
// of the command family files.
var commandTable = map[uint32]*cmdDef{}

// call is one parsed command in flight.
type call struct {
	def       *cmdDef
	tag       uint16
	handles   []uint32
	names     [][]byte
	auths     []*authCmd
	rawParams []byte // as received; cpHash covers this form
	params    []byte // after parameter decryption
	// authEnt holds the entity each authorization session authorizes.
	authEnt []*entity
}

// reply is what a handler produces: response handles and the marshalled
// parameter area.
type reply struct {
	handles []uint32
	params  []byte
}

// authCmd is one TPMS_AUTH_COMMAND from the authorization area.
type authCmd struct {
	handle uint32
	nonce  []byte
	attrs  byte
	hmac   []byte
	sess   *session // nil for TPM_RS_PW
}

// Session attribute bits, Part 2 §8.4 (TPMA_SESSION).
const (
	saContinueSession byte = 1 << 0
	saAuditExclusive  byte = 1 << 1
	saAuditReset      byte = 1 << 2
	saDecrypt         byte = 1 << 5
	saEncrypt         byte = 1 << 6
	saAudit           byte = 1 << 7
)

type handlerFunc[C any] func(t *TPM, c *call, cmd *C) (*reply, error)

// register adds command C to the table. roles gives the authorization
// role of each auth handle (default USER).
func register[C gt.Command[R, *R], R any](fn handlerFunc[C], roles ...authRole) {
	var zero C
	ct := reflect.TypeOf(zero)
	def := &cmdDef{cc: uint32(zero.Command()), name: ct.Name()}
	i := 0
	for ; i < ct.NumField(); i++ {
		f := ct.Field(i)
		tags := strings.Split(f.Tag.Get("gotpm"), ",")
		if !contains(tags, "handle") {
			break
		}
		if f.Type.Kind() != reflect.Interface && f.Type != reflect.TypeOf(gt.UnmarshalledHandle{}) {
			panic(fmt.Sprintf("tpm2: %s.%s: handle field type %v cannot be unmarshalled; use a local command struct", ct.Name(), f.Name, f.Type))
		}
		def.nHandles++
		if contains(tags, "auth") {
			def.nAuth++
		}
		def.anon = append(def.anon, contains(tags, "anon"))
	}
	if i < ct.NumField() {
		def.decrypt = isTPM2B(ct.Field(i).Type)
	}
	var rzero R
	rt := reflect.TypeOf(rzero)
	for j := 0; j < rt.NumField(); j++ {
		f := rt.Field(j)
		if strings.Contains(f.Tag.Get("gotpm"), "handle") {
			def.rspHandle = true
			continue
		}
		def.encrypt = isTPM2B(f.Type)
		break
	}
	def.roles = make([]authRole, def.nAuth)
	copy(def.roles, roles)
	def.run = func(t *TPM, c *call) (*reply, error) {
		cmd, err := unmarshalParams[C](c)
		if err != nil {
			return nil, err
		}
		return fn(t, c, &cmd)
	}
	if _, dup := commandTable[def.cc]; dup {
		panic(fmt.Sprintf("tpm2: command 0x%x registered twice", def.cc))
	}
	commandTable[def.cc] = def
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func isTPM2B(t reflect.Type) bool {
	n := t.Name()
	return strings.HasPrefix(n, "TPM2B") || strings.HasPrefix(n, "tpm2b")
}

// implementedCommands lists the table's command codes in ascending order,
// the order GetCapability(TPM_CAP_COMMANDS) reports them in.
func implementedCommands() []uint32 {
	ccs := make([]uint32, 0, len(commandTable))
	for cc := range commandTable {
		ccs = append(ccs, cc)
	}
	sort.Slice(ccs, func(i, j int) bool { return ccs[i] < ccs[j] })
	return ccs
}

var paramErrRE = regexp.MustCompile(`unmarshalling (first )?parameter( (\d+))?`)

// unmarshalParams decodes the parameter area into the go-tpm structure C.
// go-tpm's decoder expects the cpHash layout (CC || names || parameters);
// handle placeholders stand in for the names since handlers use
// c.handles, not the struct's handle fields.
func unmarshalParams[C gt.Command[R, *R], R any](c *call) (C, error) {
	var zero C
	buf := make([]byte, 0, 4+4*len(c.handles)+len(c.params))
	buf = binary.BigEndian.AppendUint32(buf, c.def.cc)
	for i := range c.handles {
		if !c.def.anon[i] {
			buf = binary.BigEndian.AppendUint32(buf, rhOwner)
		}
	}
	prefix := len(buf)
	buf = append(buf, c.params...)
	cmd, err := gt.UnmarshalCommand[C](buf)
	if err != nil {
		n := 1
		if m := paramErrRE.FindStringSubmatch(err.Error()); m != nil && m[3] != "" {
			if v, e := strconv.Atoi(m[3]); e == nil {
				n = v + 1
			}
		}
		if msg := err.Error(); strings.Contains(msg, "EOF") || strings.Contains(msg, "insufficient") ||
			strings.Contains(msg, "ran out of data") || strings.Contains(msg, "error reading data") {
			return zero, rcP(rcInsufficient, n, "%v", err)
		}
		return zero, rcP(rcValue, n, "%v", err)
	}
	// go-tpm's decoder does not report leftover bytes; re-encoding tells
	// how many were consumed, and Part 3 §5.2 requires TPM_RC_SIZE when
	// the parameter area is longer than its contents.
	if re, err := gt.MarshalCommand(cmd); err == nil && len(re)-prefix < len(c.params) {
		return zero, rcE(rcSize, "%d trailing parameter bytes", len(c.params)-(len(re)-prefix))
	}
	return cmd, nil
}

// errEngineSide is returned by the Execute methods of engine-side
// command structures: structures this package declares (because go-tpm
// has none, or has one with concrete handle types its decoder cannot
// fill) only to decode commands, never to send them.
var errEngineSide = errors.New("tpm2: engine-side command structure")

// noResponse is the response type of engine-side structures whose
// response has no TPM2B first parameter.
type noResponse struct{}

// parseCommand splits the command body into handles, authorization area
// and parameters, Part 3 §5.
func (t *TPM) parseCommand(def *cmdDef, tag uint16, body []byte) (*call, error) {
	c := &call{def: def, tag: tag}
	if len(body) < 4*def.nHandles {
		return nil, rcE(rcInsufficient, "handle area")
	}
	for i := 0; i < def.nHandles; i++ {
		c.handles = append(c.handles, binary.BigEndian.Uint32(body[4*i:]))
	}
	body = body[4*def.nHandles:]
	if tag == stSessions {
		if len(body) < 4 {
			return nil, rcE(rcAuthSize, "missing authorizationSize")
		}
		authSize := binary.BigEndian.Uint32(body)
		body = body[4:]
		if authSize < 9 || uint64(authSize) > uint64(len(body)) {
			return nil, rcE(rcAuthSize, "authorizationSize %d", authSize)
		}
		area := body[:authSize]
		body = body[authSize:]
		for len(area) > 0 {
			if len(c.auths) == maxSessionsPerCmd {
				return nil, rcE(rcAuthContext, "more than %d sessions", maxSessionsPerCmd)
			}
			a, rest, ok := parseAuthCommand(area)
			if !ok {
				return nil, rcE(rcAuthSize, "malformed authorization area")
			}
			c.auths = append(c.auths, a)
			area = rest
		}
		if len(c.auths) < def.nAuth {
			return nil, rcE(rcAuthMissing, "%d sessions for %d authorizations", len(c.auths), def.nAuth)
		}
	} else if def.nAuth > 0 {
		return nil, rcE(rcAuthMissing, "command needs authorization")
	}
	c.rawParams = body
	c.params = body
	return c, nil
}

func parseAuthCommand(b []byte) (*authCmd, []byte, bool) {
	if len(b) < 4+2 {
		return nil, nil, false
	}
	a := &authCmd{handle: binary.BigEndian.Uint32(b)}
	b = b[4:]
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+1+2 {
		return nil, nil, false
	}
	a.nonce = b[2 : 2+n]
	b = b[2+n:]
	a.attrs = b[0]
	b = b[1:]
	n = int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	a.hmac = b[2 : 2+n]
	return a, b[2+n:], true
}

// execute resolves handles, checks authorizations, runs the handler and
// builds the response with its authorization area.
func (t *TPM) execute(c *call) []byte {
	ents := make([]*entity, len(c.handles))
	for i, h := range c.handles {
		e, err := t.resolve(h, i+1, c.def.anon[i])
		if err != nil {
			return errorResponse(rcOf(err))
		}
		ents[i] = e
		c.names = append(c.names, e.name)
	}
	if err := t.bindSessions(c); err != nil {
		return errorResponse(rcOf(err))
	}
	if err := t.checkAuths(c, ents); err != nil {
		return errorResponse(rcOf(err))
	}
	if err := t.decryptParams(c); err != nil {
		return errorResponse(rcOf(err))
	}
	run := c.def.run
	if forceGeneric && c.def.generic != nil {
		run = c.def.generic
	}
	r, err := run(t, c)
	if err != nil {
		return errorResponse(rcOf(err))
	}
	if r == nil {
		r = &reply{}
	}
	if nvCommands[gt.TPMCC(c.def.cc)] {
		t.nvCheck = true
	}
	return t.buildResponse(c, r)
}

func (t *TPM) buildResponse(c *call, r *reply) []byte {
	var out bytes.Buffer
	out.Write(make([]byte, 10))
	for _, h := range r.handles {
		_ = binary.Write(&out, binary.BigEndian, h)
	}
	params := r.params
	if c.tag == stSessions {
		params = t.encryptParams(c, params)
		_ = binary.Write(&out, binary.BigEndian, uint32(len(params)))
		out.Write(params)
		out.Write(t.responseAuths(c, params))
	} else {
		// A command outside the exclusive audit session ends its
		// exclusivity (Part 1 §32.7).
		t.exclusiveAudit = 0
		out.Write(params)
	}
	b := out.Bytes()
	if len(b) > maxResponseSize {
		return errorResponse(rcSize)
	}
	binary.BigEndian.PutUint16(b[0:], c.tag)
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	binary.BigEndian.PutUint32(b[6:], rcSuccess)
	return b
}

// marshal concatenates go-tpm encodings of response parameters.
func marshal(vs ...gt.Marshallable) []byte {
	var b []byte
	for _, v := range vs {
		b = append(b, gt.Marshal(v)...)
	}
	return b
}

// sized returns b as a TPM2B: a 16-bit size followed by b.
func sized(b []byte) []byte {
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	return out
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
