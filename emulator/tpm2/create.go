package tpm2

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
)

// Object commands, Part 3 §12 (Create, Load, ...), §24.1 (CreatePrimary),
// §28 (Context management) and §28.5 (EvictControl).

const cryptoSHA256 = crypto.SHA256

func isHierarchy(h uint32) bool {
	return h == rhOwner || h == rhEndorsement || h == rhPlatform || h == rhNull
}

// creationData builds TPMS_CREATION_DATA (Part 2 §15.1) and returns it
// with its digest and the creation ticket (Part 3 §12.1).
func (t *TPM) creationData(o *object, parentNameAlg uint16, parentName, parentQN, outside []byte, sel gt.TPMLPCRSelection) (cd, hash []byte, ticket gt.TPMTTKCreation) {
	h, _ := o.pub.NameAlg.Hash()
	cd = appendPCRSelection(nil, &sel)
	cd = append(cd, sized(t.pcrDigest(h, sel))...)
	cd = append(cd, localityBit(t.locality))
	cd = append(cd, u16(parentNameAlg)...)
	cd = append(cd, sized(parentName)...)
	cd = append(cd, sized(parentQN)...)
	cd = append(cd, sized(outside)...)
	d := h.New()
	d.Write(cd)
	hash = d.Sum(nil)
	ticket = gt.TPMTTKCreation{Tag: gt.TPMST(stCreation), Hierarchy: gt.TPMIRHHierarchy(o.hierarchy),
		Digest: gt.TPM2BDigest{Buffer: t.ticketDigest(stCreation, o.hierarchy, h, o.name, hash)}}
	return cd, hash, ticket
}

// parseCreate decodes and checks a creation's inSensitive and inPublic;
// parent is nil for a primary object.
func (t *TPM) parseCreate(sensB, pubB []byte, parent *object) (*gt.TPMTPublic, []byte, []byte, error) {
	auth, data, err := sensitiveCreate(sensB, 1)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := parsePublic(pubB, 2)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := checkTemplate(p, auth, data, parent, 2, 1); err != nil {
		return nil, nil, nil, err
	}
	return p, auth, data, nil
}

func (t *TPM) storageParent(h uint32) (*object, error) {
	o, err := t.loadedObject(h, 1)
	if err != nil {
		return nil, err
	}
	if !o.isStorageParent() {
		return nil, rcH(rcType, 1, "parent is not a storage key")
	}
	return o, nil
}

// createChild makes an ordinary object under parent and returns it with
// its wrapped private area.
func (t *TPM) createChild(parent *object, p *gt.TPMTPublic, auth, data []byte) (*object, []byte, error) {
	pub := *p
	sens, err := t.generate(&pub, auth, data, t.rand, false)
	if err != nil {
		return nil, nil, err
	}
	o := &object{pub: pub, sens: *sens, hierarchy: parent.hierarchy}
	if err := o.finish(parent.qn); err != nil {
		return nil, nil, rcE(rcFailure, "%v", err)
	}
	priv, err := wrapSensitive(parent, o.name, sens)
	if err != nil {
		return nil, nil, rcE(rcFailure, "%v", err)
	}
	return o, priv, nil
}

// createPrimaryCommand is TPM2_CreatePrimary, Part 3 §24.1.
func (t *TPM) createPrimaryCommand(c *call, cmd *createPrimaryCmd) (*gt.CreatePrimaryResponse, error) {
	hier := c.handles[0]
	if !isHierarchy(hier) {
		return nil, rcH(rcValue, 1, "not a hierarchy")
	}
	p, auth, data, err := t.parseCreate(cmd.InSensitive.Buffer, cmd.InPublic.Buffer, nil)
	if err != nil {
		return nil, err
	}
	if err := validPCRSelection(cmd.CreationPCR, 4); err != nil {
		return nil, err
	}
	o, err := t.createPrimary(hier, p, cmd.InPublic.Buffer, auth, data)
	if err != nil {
		return nil, err
	}
	handle, err := t.allocObject(o)
	if err != nil {
		return nil, err
	}
	cd, ch, tk := t.creationData(o, uint16(gt.TPMAlgNull), u32(hier), u32(hier), cmd.OutsideInfo.Buffer, cmd.CreationPCR)
	pubB, _ := o.encoded()
	return &gt.CreatePrimaryResponse{
		ObjectHandle:   gt.TPMHandle(handle),
		OutPublic:      gt.BytesAs2B[gt.TPMTPublic](pubB),
		CreationData:   gt.BytesAs2B[gt.TPMSCreationData](cd),
		CreationHash:   gt.TPM2BDigest{Buffer: ch},
		CreationTicket: tk,
		Name:           gt.TPM2BName{Buffer: o.name},
	}, nil
}

// create is TPM2_Create, Part 3 §12.1.
func (t *TPM) create(c *call, cmd *createCmd) (*gt.CreateResponse, error) {
	parent, err := t.storageParent(c.handles[0])
	if err != nil {
		return nil, err
	}
	p, auth, data, err := t.parseCreate(cmd.InSensitive.Buffer, cmd.InPublic.Buffer, parent)
	if err != nil {
		return nil, err
	}
	if err := validPCRSelection(cmd.CreationPCR, 4); err != nil {
		return nil, err
	}
	o, priv, err := t.createChild(parent, p, auth, data)
	if err != nil {
		return nil, err
	}
	cd, ch, tk := t.creationData(o, uint16(parent.pub.NameAlg), parent.name, parent.qn, cmd.OutsideInfo.Buffer, cmd.CreationPCR)
	return &gt.CreateResponse{
		OutPrivate:     gt.TPM2BPrivate{Buffer: priv},
		OutPublic:      gt.New2B(o.pub),
		CreationData:   gt.BytesAs2B[gt.TPMSCreationData](cd),
		CreationHash:   gt.TPM2BDigest{Buffer: ch},
		CreationTicket: tk,
	}, nil
}

// createLoaded is TPM2_CreateLoaded, Part 3 §12.9.
func (t *TPM) createLoaded(c *call, cmd *createLoadedCmd) (*gt.CreateLoadedResponse, error) {
	if h := c.handles[0]; !isHierarchy(h) {
		if parent, err := t.loadedObject(h, 1); err == nil && parent.isDerivationParent() {
			return t.createDerived(parent, cmd)
		}
	}
	h := c.handles[0]
	var parent *object
	if !isHierarchy(h) {
		var err error
		if parent, err = t.storageParent(h); err != nil {
			return nil, err
		}
	}
	p, auth, data, err := t.parseCreate(cmd.InSensitive.Buffer, cmd.InPublic.Buffer, parent)
	if err != nil {
		return nil, err
	}
	var o *object
	var priv []byte
	if parent == nil {
		o, err = t.createPrimary(h, p, cmd.InPublic.Buffer, auth, data)
	} else {
		o, priv, err = t.createChild(parent, p, auth, data)
	}
	if err != nil {
		return nil, err
	}
	handle, err := t.allocObject(o)
	if err != nil {
		return nil, err
	}
	return &gt.CreateLoadedResponse{
		ObjectHandle: gt.TPMHandle(handle),
		OutPrivate:   gt.TPM2BPrivate{Buffer: priv},
		OutPublic:    gt.New2B(o.pub),
		Name:         gt.TPM2BName{Buffer: o.name},
	}, nil
}

// load is TPM2_Load, Part 3 §12.2.
func (t *TPM) load(c *call, cmd *loadCmd) (*gt.LoadResponse, error) {
	parent, err := t.storageParent(c.handles[0])
	if err != nil {
		return nil, err
	}
	p, err := parsePublic(cmd.InPublic.Buffer, 2)
	if err != nil {
		return nil, err
	}
	if err := checkPublicParms(p.Type, &p.Parameters, 2); err != nil {
		return nil, err
	}
	name, err := objectName(p)
	if err != nil {
		return nil, rcP(rcHash, 2, "%v", err)
	}
	sens, err := unwrapSensitive(parent, name, cmd.InPrivate.Buffer, 1)
	if err != nil {
		return nil, err
	}
	if sens.SensitiveType != p.Type {
		return nil, rcP(rcType, 1, "sensitive type does not match public")
	}
	o := &object{pub: *p, sens: *sens, hierarchy: parent.hierarchy}
	if err := o.finish(parent.qn); err != nil {
		return nil, rcE(rcKey, "%v", err)
	}
	handle, err := t.allocObject(o)
	if err != nil {
		return nil, err
	}
	return &gt.LoadResponse{ObjectHandle: gt.TPMHandle(handle), Name: gt.TPM2BName{Buffer: o.name}}, nil
}

// loadExternal is TPM2_LoadExternal, Part 3 §12.3.
func (t *TPM) loadExternal(c *call, cmd *loadExternalCmd) (*gt.LoadExternalResponse, error) {
	p, err := parsePublic(cmd.InPublic.Buffer, 2)
	if err != nil {
		return nil, err
	}
	if err := checkPublicParms(p.Type, &p.Parameters, 2); err != nil {
		return nil, err
	}
	hier := uint32(cmd.Hierarchy)
	if !isHierarchy(hier) {
		return nil, rcP(rcValue, 3, "hierarchy 0x%08x", hier)
	}
	o := &object{pub: *p, hierarchy: hier, publicOnly: true, external: true}
	if len(cmd.InPrivate.Buffer) != 0 {
		// A loaded-external private key must not claim TPM
		// residency (Part 3 §12.3.1).
		if hier != rhNull {
			return nil, rcP(rcHierarchy, 3, "external key with a private part outside the NULL hierarchy")
		}
		if a := p.ObjectAttributes; a.FixedTPM || a.FixedParent || a.Restricted {
			return nil, rcP(rcAttributes, 2, "external key cannot be fixedTPM, fixedParent or restricted")
		}
		s, err := gt.Unmarshal[gt.TPMTSensitive](cmd.InPrivate.Buffer)
		if err != nil {
			return nil, rcP(rcValue, 1, "%v", err)
		}
		o.sens, o.publicOnly = *s, false
	}
	if err := o.finish(nil); err != nil {
		return nil, rcP(rcKey, 2, "%v", err)
	}
	handle, err := t.allocObject(o)
	if err != nil {
		return nil, err
	}
	return &gt.LoadExternalResponse{ObjectHandle: gt.TPMHandle(handle), Name: gt.TPM2BName{Buffer: o.name}}, nil
}

// readPublic is TPM2_ReadPublic, Part 3 §12.4.
func (t *TPM) readPublic(c *call, cmd *gt.ReadPublic) (*gt.ReadPublicResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.seq != nil {
		return nil, rcH(rcType, 1, "sequence object")
	}
	return &gt.ReadPublicResponse{
		OutPublic:     gt.New2B(o.pub),
		Name:          gt.TPM2BName{Buffer: o.name},
		QualifiedName: gt.TPM2BName{Buffer: o.qn},
	}, nil
}

// unseal is TPM2_Unseal, Part 3 §12.7.
func (t *TPM) unseal(c *call, cmd *gt.Unseal) (*gt.UnsealResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.pub.Type != gt.TPMAlgKeyedHash {
		return nil, rcH(rcType, 1, "not a sealed data object")
	}
	a := o.attrs()
	if a.SignEncrypt || a.Decrypt || a.Restricted {
		return nil, rcH(rcAttributes, 1, "keyedhash key is not sealed data")
	}
	d, err := o.sens.Sensitive.Bits()
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	return &gt.UnsealResponse{OutData: gt.TPM2BSensitiveData{Buffer: d.Buffer}}, nil
}

// objectChangeAuth is TPM2_ObjectChangeAuth, Part 3 §12.8.
func (t *TPM) objectChangeAuth(c *call, cmd *gt.ObjectChangeAuth) (*gt.ObjectChangeAuthResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil || o.seq != nil {
		return nil, rcH(rcHandle, 1, "not an object")
	}
	if c.handles[0]>>24 != htTransient {
		return nil, rcH(rcHandle, 1, "ObjectChangeAuth needs a loaded transient object")
	}
	parent, err := t.storageParent(c.handles[1])
	if err != nil {
		return nil, rcH(rcType, 2, "parent is not a storage key")
	}
	h, _ := o.pub.NameAlg.Hash()
	if len(trimAuth(cmd.NewAuth.Buffer)) > h.Size() {
		return nil, rcP(rcSize, 1, "newAuth longer than nameAlg digest")
	}
	sens := o.sens
	sens.AuthValue = gt.TPM2BAuth{Buffer: append([]byte{}, cmd.NewAuth.Buffer...)}
	priv, err := wrapSensitive(parent, o.name, &sens)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	return &gt.ObjectChangeAuthResponse{OutPrivate: gt.TPM2BPrivate{Buffer: priv}}, nil
}

// evictControl is TPM2_EvictControl, Part 3 §28.5.
func (t *TPM) evictControl(c *call, cmd *gt.EvictControl) (*gt.EvictControlResponse, error) {
	auth, objH := c.handles[0], c.handles[1]
	if auth != rhOwner && auth != rhPlatform {
		return nil, rcH(rcHierarchy, 1, "EvictControl needs owner or platform")
	}
	ph := uint32(cmd.PersistentHandle)
	if ph>>24 != htPersistent {
		return nil, rcP(rcRange, 1, "not a persistent handle")
	}
	// Owner handles live in 0x81000000–0x817FFFFF, platform ones
	// above (PC Client handle allocation).
	if (auth == rhOwner) != (ph < 0x81800000) {
		return nil, rcP(rcRange, 1, "persistent handle outside the authorizing hierarchy's range")
	}
	if objH>>24 == htPersistent {
		if objH != ph {
			return nil, rcP(rcHandle, 1, "persistent handles differ")
		}
		o := t.ps.persistent[objH]
		if auth == rhOwner && o.hierarchy == rhPlatform {
			return nil, rcH(rcHierarchy, 2, "platform object")
		}
		delete(t.ps.persistent, objH)
		return nil, nil
	}
	o, err := t.loadedObject(objH, 2)
	if err != nil {
		return nil, err
	}
	if o.seq != nil {
		return nil, rcH(rcHierarchy, 2, "a sequence cannot be made persistent")
	}
	// Temporary (null-hierarchy), stClear and public-only objects cannot
	// be made persistent, one response code for the three as in the
	// reference's TPM2_EvictControl.
	if o.hierarchy == rhNull || o.publicOnly || o.attrs().STClear {
		return nil, rcH(rcAttributes, 2, "temporary, stClear or public-only object")
	}
	if auth == rhOwner && o.hierarchy == rhPlatform {
		return nil, rcH(rcHierarchy, 2, "platform object")
	}
	if t.ps.persistent[ph] != nil {
		return nil, rcE(rcNVDefined, "persistent handle 0x%08x in use", ph)
	}
	if len(t.ps.persistent) >= persistentMax {
		return nil, rcE(rcNVSpace, "no room for persistent objects")
	}
	cp := *o
	t.ps.persistent[ph] = &cp
	return nil, nil
}

// Context blobs (Part 1 §30): the payload is encrypted with a key derived
// from a per-boot context key and the sequence number, and integrity
// protected with an HMAC over sequence, handle, hierarchy and ciphertext.
// The context key changes at every TPM Reset, invalidating old blobs.

const (
	ctxKindObject  byte = 1
	ctxKindSession byte = 2
)

func (t *TPM) contextKeys(seq uint64) (enc, iv, mac []byte) {
	s := binary.BigEndian.AppendUint64(nil, seq)
	k := gt.KDFa(cryptoSHA256, t.contextKey, "CONTEXT", s, nil, (32+16+32)*8)
	return k[:32], k[32:48], k[48:]
}

func (t *TPM) sealContext(seq uint64, handle, hier uint32, payload []byte) []byte {
	ek, iv, mk := t.contextKeys(seq)
	blk, _ := aes.NewCipher(ek)
	enc := make([]byte, len(payload))
	cipher.NewCTR(blk, iv).XORKeyStream(enc, payload)
	m := hmac.New(sha256.New, mk)
	m.Write(binary.BigEndian.AppendUint64(nil, seq))
	m.Write(u32(handle))
	m.Write(u32(hier))
	m.Write(enc)
	return append(sized(m.Sum(nil)), enc...)
}

func (t *TPM) openContext(seq uint64, handle, hier uint32, blob []byte) ([]byte, error) {
	if len(blob) < 2+sha256.Size || int(binary.BigEndian.Uint16(blob)) != sha256.Size {
		return nil, rcP(rcSize, 1, "context blob")
	}
	integ, enc := blob[2:2+sha256.Size], blob[2+sha256.Size:]
	ek, iv, mk := t.contextKeys(seq)
	m := hmac.New(sha256.New, mk)
	m.Write(binary.BigEndian.AppendUint64(nil, seq))
	m.Write(u32(handle))
	m.Write(u32(hier))
	m.Write(enc)
	if !hmac.Equal(m.Sum(nil), integ) {
		return nil, rcP(rcIntegrity, 1, "context integrity")
	}
	blk, _ := aes.NewCipher(ek)
	plain := make([]byte, len(enc))
	cipher.NewCTR(blk, iv).XORKeyStream(plain, enc)
	return plain, nil
}

// contextSave is TPM2_ContextSave, Part 3 §28.2.
func (t *TPM) contextSave(c *call, cmd *contextSaveCmd) (*gt.ContextSaveResponse, error) {
	h := c.handles[0]
	var saved, hier uint32
	var payload []byte
	seq := t.contextSeq
	switch h >> 24 {
	case htTransient:
		o := t.objects[h]
		if o == nil {
			return nil, rcE(rcReferenceH0, "object not loaded")
		}
		if o.seq != nil {
			return nil, rcH(rcType, 1, "sequence contexts are not saved")
		}
		saved, hier = 0x80000000, o.hierarchy
		if o.attrs().STClear {
			saved = 0x80000002
		}
		payload = []byte{ctxKindObject}
		if o.publicOnly {
			payload = append(payload, 1)
		} else {
			payload = append(payload, 0)
		}
		pub, sens := o.encoded()
		payload = append(payload, sized(pub)...)
		payload = append(payload, sized(sens)...)
		payload = append(payload, sized(o.qn)...)
		t.cacheContextObject(payload, o)
	case htHMAC, htPolicy:
		s := t.sessions[h]
		if s == nil || s.saved {
			return nil, rcE(rcReferenceH0, "session not loaded")
		}
		saved, hier = h, rhNull
		s.saved, s.contextSeq = true, seq
		payload = append([]byte{ctxKindSession}, u32(h)...)
	default:
		return nil, rcH(rcHandle, 1, "handle 0x%08x cannot be saved", h)
	}
	t.contextSeq++
	blob := t.sealContext(seq, saved, hier, payload)
	return &gt.ContextSaveResponse{Context: gt.TPMSContext{
		Sequence:    seq,
		SavedHandle: gt.TPMIDHSaved(saved),
		Hierarchy:   gt.TPMIRHHierarchy(hier),
		ContextBlob: gt.TPM2BContextData{Buffer: blob},
	}}, nil
}

// contextLoad is TPM2_ContextLoad, Part 3 §28.3.
func (t *TPM) contextLoad(c *call, cmd *contextLoadCmd) (*contextLoadResponse, error) {
	ctx := &cmd.Context
	saved, hier := uint32(ctx.SavedHandle), uint32(ctx.Hierarchy)
	plain, err := t.openContext(ctx.Sequence, saved, hier, ctx.ContextBlob.Buffer)
	if err != nil {
		return nil, err
	}
	if len(plain) < 1 {
		return nil, rcP(rcSize, 1, "empty context")
	}
	switch plain[0] {
	case ctxKindSession:
		if len(plain) != 5 {
			return nil, rcP(rcSize, 1, "session context")
		}
		h := binary.BigEndian.Uint32(plain[1:])
		s := t.sessions[h]
		if s == nil || !s.saved || s.contextSeq != ctx.Sequence || h != saved {
			return nil, rcP(rcHandle, 1, "session context is stale")
		}
		s.saved = false
		return &contextLoadResponse{LoadedHandle: gt.TPMIDHContext(h)}, nil
	case ctxKindObject:
		if !t.hierarchyEnabled(hier) {
			return nil, rcP(rcHierarchy, 1, "hierarchy disabled")
		}
		rd := bytes.NewReader(plain[2:])
		next := func() []byte {
			var n uint16
			if binary.Read(rd, binary.BigEndian, &n) != nil || int(n) > rd.Len() {
				return nil
			}
			b := make([]byte, n)
			_, _ = rd.Read(b)
			return b
		}
		pubB, sensB, qn := next(), next(), next()
		var o *object
		if cached := t.ctxCache[sha256.Sum256(plain)]; cached != nil {
			cp := *cached
			o = &cp
		} else {
			o, err = objectFromBytesQN(pubB, sensB, hier, plain[1] == 1)
			if err != nil {
				return nil, rcP(rcValue, 1, "context object: %v", err)
			}
			t.cacheContextObject(plain, o)
		}
		o.hierarchy, o.qn = hier, qn
		handle, err := t.allocObject(o)
		if err != nil {
			return nil, err
		}
		return &contextLoadResponse{LoadedHandle: gt.TPMIDHContext(handle)}, nil
	}
	return nil, rcP(rcValue, 1, "unknown context kind")
}

// decodeContextLoad reads ContextLoad's parameter, a TPMS_CONTEXT, by
// hand: a resource manager loads contexts around every command it passes
// on, and go-tpm's reflective decoder costs more than the load.
func decodeContextLoad(p []byte, cmd *contextLoadCmd) error {
	r := &paramReader{b: p, n: 1}
	ctx := &cmd.Context
	ctx.Sequence = r.u64()
	ctx.SavedHandle = gt.TPMIDHSaved(r.u32())
	ctx.Hierarchy = gt.TPMIRHHierarchy(r.u32())
	ctx.ContextBlob.Buffer = r.sized(maxResponseSize)
	return r.done()
}

func objectFromBytesQN(pub, sens []byte, hier uint32, publicOnly bool) (*object, error) {
	p, err := gt.Unmarshal[gt.TPMTPublic](pub)
	if err != nil {
		return nil, err
	}
	o := &object{pub: *p, hierarchy: hier, publicOnly: publicOnly}
	if !publicOnly {
		s, err := gt.Unmarshal[gt.TPMTSensitive](sens)
		if err != nil {
			return nil, err
		}
		o.sens = *s
	}
	if err := o.finish(nil); err != nil {
		return nil, err
	}
	return o, nil
}

// flushContext is TPM2_FlushContext, Part 3 §28.4. The handle is a
// parameter, so a missing entity is a parameter error.
func (t *TPM) flushContext(c *call, cmd *flushContextCmd) (*gt.FlushContextResponse, error) {
	h := uint32(cmd.FlushHandle)
	switch h >> 24 {
	case htTransient:
		if h&0xFFFFFF >= loadedObjectsMax {
			return nil, rcP(rcValue, 1, "handle 0x%08x out of range", h)
		}
		if t.objects[h] == nil {
			return nil, rcP(rcHandle, 1, "object 0x%08x not loaded", h)
		}
		delete(t.objects, h)
	case htHMAC, htPolicy:
		if h&0xFFFFFF >= activeSessionsMax {
			return nil, rcP(rcValue, 1, "handle 0x%08x out of range", h)
		}
		if t.sessions[h] == nil {
			return nil, rcP(rcHandle, 1, "session 0x%08x not loaded", h)
		}
		delete(t.sessions, h)
	default:
		return nil, rcP(rcValue, 1, "cannot flush handle 0x%08x", h)
	}
	return nil, nil
}

// decodeFlushContext reads FlushContext's parameter by hand, for the same
// reason as decodeContextLoad: a resource manager flushes after every
// command.
func decodeFlushContext(p []byte, cmd *flushContextCmd) error {
	r := &paramReader{b: p, n: 1}
	cmd.FlushHandle = gt.TPMHandle(r.u32())
	return r.done()
}

// encoded returns the object's marshalled public and sensitive areas,
// computed once: objects do not change after they are loaded.
func (o *object) encoded() (pub, sens []byte) {
	if o.pubBytes == nil {
		o.pubBytes = gt.Marshal(&o.pub)
	}
	if o.sensBytes == nil && !o.publicOnly {
		o.sensBytes = gt.Marshal(&o.sens)
	}
	return o.pubBytes, o.sensBytes
}

// ctxCacheMax bounds the parsed-object cache of context blobs. A resource
// manager swaps the same few objects in and out for every command;
// re-parsing a key (an RSA key's CRT values, an ECC public point) each
// time would dominate ContextLoad.
const ctxCacheMax = 32

func (t *TPM) cacheContextObject(payload []byte, o *object) {
	if t.ctxCache == nil {
		t.ctxCache = map[[32]byte]*object{}
	}
	if len(t.ctxCache) >= ctxCacheMax {
		for k := range t.ctxCache {
			delete(t.ctxCache, k)
			break
		}
	}
	t.ctxCache[sha256.Sum256(payload)] = o
}
