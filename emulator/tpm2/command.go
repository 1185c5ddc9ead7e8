package tpm2

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sort"
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

// cmdDef is one command as the dispatcher sees it, built from a row of
// the command table (commands.go). The handle layout and which parameters
// a session may encrypt are read from the command's go-tpm structures;
// the handler, roles and NV behaviour come from the row.
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
	// nv: the command may change what the TPM keeps across power cycles
	// when it succeeds (TPMA_CC.nv); lazy: all it changes is written
	// lazily (the orderly-shutdown state, the clock, the DA counters).
	nv, lazy bool
	// extensive: the command may flush any number of loaded contexts;
	// flushed: it flushes the transient objects it names (TPMA_CC,
	// Part 2 §8.9).
	extensive, flushed bool
	// The command and response structures and their parameter fields
	// (params is nil for a row only its hand-written decoder reads).
	cmdType, rspType  reflect.Type
	params, rspParams []param
	run               func(t *TPM, c *call) (*reply, error)
	// generic decodes with the parameter codec (paramcodec.go) even where
	// the row has a hand-written decoder, so tests can compare the two;
	// nil where the codec cannot decode the command.
	generic func(t *TPM, c *call) (*reply, error)
}

// forceGeneric makes execute use the parameter codec's path even where a
// fast path exists; tests set it to compare the two.
var forceGeneric bool

// checkEncoder, when set (by tests), is given what a hand-written encoder
// produced and what the parameter codec produces for the same response.
var checkEncoder func(command string, fast, generic []byte)

// A row's handler runs one command: cmd is the decoded parameter area
// (handles are in c.handles), the result is go-tpm's response structure,
// nil when the response has no parameters. Rows are generic in pointer
// types only (*gt.X), which Go compiles once for all rows.

// rowOption adds what a table row says beyond its handler.
type rowOption func(d *cmdDef, fast *fastCodec)

// fastCodec holds a row's hand-written decoder and encoder: functions of
// the row's own command and response structures, so they cannot disagree
// with the handler about what a command carries.
type fastCodec struct {
	decode func(p []byte, cmd any) error // cmd is a *C
	encode func(b []byte, r any) []byte  // r is a *R
	only   bool
}

// roles gives the authorization role of each auth handle, in order
// (default USER, Part 1 §19.2).
func roles(r ...authRole) rowOption {
	return func(d *cmdDef, _ *fastCodec) { d.roles = r }
}

// writesNV marks a command that may change durable state.
func writesNV(d *cmdDef, _ *fastCodec) { d.nv = true }

// writesLazily marks a command whose durable changes are all written
// lazily: a host need not save before answering it.
func writesLazily(d *cmdDef, _ *fastCodec) { d.nv, d.lazy = true, true }

// flushesContexts marks a command that may flush any number of loaded
// contexts (TPMA_CC.extensive).
func flushesContexts(d *cmdDef, _ *fastCodec) { d.extensive = true }

// flushesItsObject marks a command that flushes the transient object it
// names (TPMA_CC.flushed).
func flushesItsObject(d *cmdDef, _ *fastCodec) { d.flushed = true }

// decodeWith gives a command on the hot path a hand-written parameter
// decoder: the reflective parameter codec costs more than such a
// command's work. It fills the structure the codec fills; tests compare the
// two on every command they record. PC is *C, C the command structure.
func decodeWith[PC any](fn func(p []byte, cmd PC) error) rowOption {
	return func(_ *cmdDef, f *fastCodec) {
		f.decode = func(p []byte, cmd any) error { return fn(p, cmd.(PC)) }
	}
}

// encodeWith gives a command on the hot path a hand-written response
// encoder of go-tpm's response structure, appending to b. PR is *R, R the
// response structure.
func encodeWith[PR any](fn func(b []byte, r PR) []byte) rowOption {
	return func(_ *cmdDef, f *fastCodec) {
		f.encode = func(b []byte, r any) []byte { return fn(b, r.(PR)) }
	}
}

// cmd builds the dispatcher's definition of a command from its handler
// and options. PC is *C and PR is *R, for C a go-tpm command structure and
// R its response. Go compiles a generic function once per type argument,
// so cmd only adapts the handler to untyped values; newCmdDef, compiled
// once, does the rest by reflection.
func cmd[PC, PR comparable](fn func(t *TPM, c *call, cmd PC) (PR, error), opts ...rowOption) *cmdDef {
	var none PR
	return newCmdDef(reflect.TypeFor[PC]().Elem(), reflect.TypeFor[PR]().Elem(), func(t *TPM, c *call, cmd any) (any, error) {
		r, err := fn(t, c, cmd.(PC))
		if err != nil || r == none {
			return nil, err
		}
		return r, nil
	}, opts)
}

// newCmdDef builds a command's definition: ct and rt are its command and
// response structures, run its handler on a *ct giving a *rt or nil.
func newCmdDef(ct, rt reflect.Type, run func(t *TPM, c *call, cmd any) (any, error), opts []rowOption) *cmdDef {
	code, ok := reflect.Zero(ct).Interface().(interface{ Command() gt.TPMCC })
	if !ok {
		panic(fmt.Sprintf("tpm2: %v is not a command structure", ct))
	}
	def := &cmdDef{cc: uint32(code.Command()), name: ct.Name(), cmdType: ct, rspType: rt}
	i := 0
	for ; i < ct.NumField(); i++ {
		f := ct.Field(i)
		tags := strings.Split(f.Tag.Get("gotpm"), ",")
		if !contains(tags, "handle") {
			break
		}
		if f.Type.Kind() != reflect.Interface && f.Type != reflect.TypeOf(gt.UnmarshalledHandle{}) {
			panic(fmt.Sprintf("tpm2: %s.%s: handle field type %v cannot be unmarshalled; use an engine-side structure", ct.Name(), f.Name, f.Type))
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
	var rspHandles []int
	j := 0
	for ; j < rt.NumField(); j++ {
		f := rt.Field(j)
		if strings.Contains(f.Tag.Get("gotpm"), "handle") {
			def.rspHandle = true
			rspHandles = append(rspHandles, j)
			continue
		}
		def.encrypt = isTPM2B(f.Type)
		break
	}
	var fast fastCodec
	for _, o := range opts {
		o(def, &fast)
	}
	if len(def.roles) > def.nAuth {
		panic(fmt.Sprintf("tpm2: %s: %d roles for %d auth handles", def.name, len(def.roles), def.nAuth))
	}
	def.roles = append(append([]authRole{}, def.roles...), make([]authRole, def.nAuth-len(def.roles))...)

	def.rspParams = paramFields(rt, j, false)
	encode := func(t *TPM, r any) ([]byte, error) {
		b, err := encodeParams(t.paramBuf[:0], reflect.ValueOf(r).Elem(), def.rspParams)
		if err == nil {
			t.paramBuf = b
		}
		return b, err
	}
	if fast.encode != nil {
		fn := fast.encode
		encode = func(t *TPM, r any) ([]byte, error) {
			t.paramBuf = fn(t.paramBuf[:0], r)
			if checkEncoder != nil {
				if g, err := encodeParams(nil, reflect.ValueOf(r).Elem(), def.rspParams); err == nil {
					checkEncoder(def.name, t.paramBuf, g)
				}
			}
			return t.paramBuf, nil
		}
	}
	finish := func(t *TPM, c *call, r any, err error) (*reply, error) {
		if err != nil || r == nil {
			return nil, err
		}
		out := &c.rep
		if len(rspHandles) != 0 {
			rv := reflect.ValueOf(r).Elem()
			for _, j := range rspHandles {
				out.handles = append(out.handles, handleValue(rv.Field(j)))
			}
		}
		out.params, err = encode(t, r)
		return out, err
	}
	if !fast.only {
		def.params = paramFields(ct, i, true)
	}
	def.run = func(t *TPM, c *call) (*reply, error) {
		v := reflect.New(ct)
		if err := decodeParams(c.params, v.Elem(), def.params); err != nil {
			return nil, err
		}
		r, err := run(t, c, v.Interface())
		return finish(t, c, r, err)
	}
	if fast.decode != nil {
		dec := fast.decode
		if fastSlots == nFastSlots {
			panic(fmt.Sprintf("tpm2: %s: more than nFastSlots (%d) hand-decoded commands", def.name, nFastSlots))
		}
		slot := fastSlots
		fastSlots++
		def.generic = def.run
		def.run = func(t *TPM, c *call) (*reply, error) {
			v := t.fastCmds[slot]
			if v.IsValid() {
				v.Elem().SetZero()
			} else {
				v = reflect.New(ct)
				t.fastCmds[slot] = v
			}
			cmd := v.Interface()
			if err := dec(c.params, cmd); err != nil {
				return nil, err
			}
			r, err := run(t, c, cmd)
			return finish(t, c, r, err)
		}
		if fast.only {
			def.generic = nil
		}
	}
	return def
}

// handleValue reads a response handle field: a TPMHandle, or a typed
// handle whose underlying type is uint32.
func handleValue(v reflect.Value) uint32 {
	if h, ok := v.Interface().(gt.TPMHandle); ok {
		return uint32(h)
	}
	return uint32(v.Uint())
}

// fastSlots counts the hand-decoded commands as the table is built, each
// given its slot in TPM.fastCmds; nFastSlots bounds them.
var fastSlots int

const nFastSlots = 16

// noDecoder marks a hand-written decoder as the only one: the parameter
// codec cannot read the command, so the row has no generic path.
func noDecoder(_ *cmdDef, f *fastCodec) { f.only = true }

// table indexes the command definitions by command code.
func table(defs ...*cmdDef) map[uint32]*cmdDef {
	m := make(map[uint32]*cmdDef, len(defs))
	for _, d := range defs {
		if _, dup := m[d.cc]; dup {
			panic(fmt.Sprintf("tpm2: command 0x%x in the table twice", d.cc))
		}
		m[d.cc] = d
	}
	return m
}

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
	rep     reply

	// Backing arrays of the slices above: a command names at most three
	// handles and carries at most three sessions, so a call is one
	// allocation however many it has.
	handleArr [3]uint32
	nameArr   [3][]byte
	entArr    [3]*entity
	entVals   [3]entity // what entArr points to; live for the command only
	authArr   [maxSessionsPerCmd]authCmd
	authPtrs  [maxSessionsPerCmd]*authCmd
	authEnts  [maxSessionsPerCmd]*entity
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
func (t *TPM) implementedCommands() []uint32 {
	ccs := make([]uint32, 0, len(t.commands))
	for cc := range t.commands {
		ccs = append(ccs, cc)
	}
	sort.Slice(ccs, func(i, j int) bool { return ccs[i] < ccs[j] })
	return ccs
}

// parseCommand splits the command body into handles, authorization area
// and parameters, Part 3 §5.
func (t *TPM) parseCommand(def *cmdDef, tag uint16, body []byte) (*call, error) {
	c := &t.call
	*c = call{def: def, tag: tag}
	c.handles, c.names, c.auths = c.handleArr[:0], c.nameArr[:0], c.authPtrs[:0]
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
			a := &c.authArr[len(c.auths)]
			rest, ok := parseAuthCommand(area, a)
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

// parseAuthCommand reads one TPMS_AUTH_COMMAND from b into a.
func parseAuthCommand(b []byte, a *authCmd) ([]byte, bool) {
	if len(b) < 4+2 {
		return nil, false
	}
	a.handle = binary.BigEndian.Uint32(b)
	b = b[4:]
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+1+2 {
		return nil, false
	}
	a.nonce = b[2 : 2+n]
	b = b[2+n:]
	a.attrs = b[0]
	b = b[1:]
	n = int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, false
	}
	a.hmac = b[2 : 2+n]
	return b[2+n:], true
}

// execute resolves handles, checks authorizations, runs the handler and
// builds the response with its authorization area.
func (t *TPM) execute(c *call) []byte {
	ents := c.entArr[:0]
	for i, h := range c.handles {
		e := &c.entVals[i]
		if err := t.resolveInto(e, h, i+1, c.def.anon[i]); err != nil {
			return errorResponse(rcOf(err))
		}
		ents = append(ents, e)
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
		r = &c.rep
	}
	if c.def.nv {
		t.nvCheck = true
	}
	return t.buildResponse(c, r)
}

func (t *TPM) buildResponse(c *call, r *reply) []byte {
	// Sized so that the response is one allocation and no larger than it
	// must be: a password authorization answers 5 octets, a session's
	// nonce and HMAC are at most a digest each.
	n := 10 + 4*len(r.handles) + 4 + len(r.params)
	for _, a := range c.auths {
		n += 2 + 1 + 2
		if a.sess != nil {
			n += 2 * maxDigestBytes
		}
	}
	b := make([]byte, 10, n)
	for _, h := range r.handles {
		b = binary.BigEndian.AppendUint32(b, h)
	}
	params := r.params
	if c.tag == stSessions {
		params = t.encryptParams(c, params)
		t.commandAudit(c, params)
		b = binary.BigEndian.AppendUint32(b, uint32(len(params)))
		b = append(b, params...)
		b = t.appendResponseAuths(b, c, params)
	} else {
		// A command outside the exclusive audit session ends its
		// exclusivity (Part 1 §32.7).
		t.exclusiveAudit = 0
		t.commandAudit(c, params)
		b = append(b, params...)
	}
	if len(b) > maxResponseSize {
		return errorResponse(rcSize)
	}
	binary.BigEndian.PutUint16(b[0:], c.tag)
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	binary.BigEndian.PutUint32(b[6:], rcSuccess)
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
