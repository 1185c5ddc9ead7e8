package tpm2

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"

	gt "github.com/google/go-tpm/tpm2"
)

// The parameter codec: a command's parameter area (Part 1 §18.7) decoded
// into its go-tpm command structure, and a response structure's
// parameters encoded (Part 1 §18.9), field by field through go-tpm's own
// codec. go-tpm's command-level functions (UnmarshalCommand,
// MarshalResponse) are generic in the command type: one copy of their
// code per command, which made up a third of the vTPM domain's image.
// Here only a field's type has a generic decoder (paramDecoders), and the
// parameter types are shared among commands; every other step works on
// reflect values. The result is the same bytes and structures as go-tpm's
// (TestParamCodecMatchesGoTPM).

// param is one parameter field of a command or response structure.
type param struct {
	index    int    // field index in the structure
	name     string // for errors
	optional bool   // gotpm:"optional": a TPM2B whose zero size leaves the field unset
	basic    bool   // an integer or Boolean, read and written big-endian
	dec      fieldDecoder
}

// fieldDecoder decodes one value from the front of b into dst and
// returns how many octets it took.
type fieldDecoder func(b []byte, dst reflect.Value) (int, error)

// paramFields lists structure t's parameter fields: those from index
// first on (the handles come before). It panics on a field this codec
// cannot read, so a command table row with one fails every test at once.
func paramFields(t reflect.Type, first int, decode bool) []param {
	var ps []param
	for i := first; i < t.NumField(); i++ {
		f := t.Field(i)
		p := param{index: i, name: t.Name() + "." + f.Name}
		for _, tag := range strings.Split(f.Tag.Get("gotpm"), ",") {
			switch tag {
			case "":
			case "optional":
				p.optional = true
			case "nullable":
				// A nullable integer is read as it is; go-tpm writes the
				// NULL value for zero only when marshalling a command.
			default:
				panic(fmt.Sprintf("tpm2: %s: parameter tag %q not supported", p.name, tag))
			}
		}
		switch f.Type.Kind() {
		case reflect.Bool, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			p.basic = true
		case reflect.Struct:
			if decode {
				if p.dec = paramDecoders[f.Type]; p.dec == nil {
					panic(fmt.Sprintf("tpm2: %s: no decoder for parameter type %v; add it to paramDecoders", p.name, f.Type))
				}
			}
		default:
			panic(fmt.Sprintf("tpm2: %s: parameter of kind %v not supported", p.name, f.Type.Kind()))
		}
		ps = append(ps, p)
	}
	return ps
}

// decodeParams fills the parameter fields of v, a command structure, from
// b; errors are format-one response codes naming the parameter, and an
// area longer than its parameters is TPM_RC_SIZE (Part 3 §5.2).
func decodeParams(b []byte, v reflect.Value, ps []param) error {
	for i, p := range ps {
		n, err := decodeParam(b, v.Field(p.index), p)
		if err != nil {
			rc := uint32(rcValue)
			if msg := err.Error(); strings.Contains(msg, "EOF") || strings.Contains(msg, "insufficient") ||
				strings.Contains(msg, "ran out of data") || strings.Contains(msg, "error reading data") {
				rc = rcInsufficient
			}
			return rcP(rc, i+1, "%s: %v", p.name, err)
		}
		b = b[n:]
	}
	if len(b) != 0 {
		return rcE(rcSize, "%d trailing parameter bytes", len(b))
	}
	return nil
}

func decodeParam(b []byte, dst reflect.Value, p param) (int, error) {
	if p.optional && len(b) >= 2 && b[0] == 0 && b[1] == 0 {
		return 2, nil
	}
	if !p.basic {
		return p.dec(b, dst)
	}
	size := int(dst.Type().Size())
	if len(b) < size {
		return 0, errInsufficient
	}
	var u uint64
	switch size {
	case 1:
		u = uint64(b[0])
	case 2:
		u = uint64(binary.BigEndian.Uint16(b))
	case 4:
		u = uint64(binary.BigEndian.Uint32(b))
	default:
		u = binary.BigEndian.Uint64(b)
	}
	switch dst.Kind() {
	case reflect.Bool:
		dst.SetBool(u != 0)
	case reflect.Int8:
		dst.SetInt(int64(int8(u)))
	case reflect.Int16:
		dst.SetInt(int64(int16(u)))
	case reflect.Int32:
		dst.SetInt(int64(int32(u)))
	case reflect.Int64:
		dst.SetInt(int64(u))
	default:
		dst.SetUint(u)
	}
	return size, nil
}

var errInsufficient = fmt.Errorf("insufficient data")

// encodeParams appends the parameter fields of v, a response structure,
// to out, as go-tpm's MarshalResponse writes them. go-tpm panics on a
// value it cannot encode (a union member that does not match its
// selector); that is the handler's error, answered as TPM_RC_FAILURE.
func encodeParams(out []byte, v reflect.Value, ps []param) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = rcE(rcFailure, "%s response: %v", v.Type().Name(), r)
		}
	}()
	for _, p := range ps {
		f := v.Field(p.index)
		if !p.basic {
			out = append(out, gt.Marshal(f.Interface().(gt.Marshallable))...)
			continue
		}
		var u uint64
		switch f.Kind() {
		case reflect.Bool:
			if f.Bool() {
				u = 1
			}
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			u = uint64(f.Int())
		default:
			u = f.Uint()
		}
		switch f.Type().Size() {
		case 1:
			out = append(out, byte(u))
		case 2:
			out = binary.BigEndian.AppendUint16(out, uint16(u))
		case 4:
			out = binary.BigEndian.AppendUint32(out, uint32(u))
		default:
			out = binary.BigEndian.AppendUint64(out, u)
		}
	}
	return out, nil
}

// paramDecoders are the decoders of every structure type a command table
// row has as a parameter (paramFields panics on one missing here).
var paramDecoders = decoders(
	decoderFor[gt.TPM2BAuth](),
	decoderFor[gt.TPM2BData](),
	decoderFor[gt.TPM2BDigest](),
	decoderFor[gt.TPM2BECCParameter](),
	decoderFor[gt.TPM2BECCPoint](),
	decoderFor[gt.TPM2BEncryptedSecret](),
	decoderFor[gt.TPM2BEvent](),
	decoderFor[gt.TPM2BIDObject](),
	decoderFor[gt.TPM2BIV](),
	decoderFor[gt.TPM2BMaxBuffer](),
	decoderFor[gt.TPM2BMaxNVBuffer](),
	decoderFor[gt.TPM2BName](),
	decoderFor[gt.TPM2BNonce](),
	decoderFor[gt.TPM2BOperand](),
	decoderFor[gt.TPM2BPrivate](),
	decoderFor[gt.TPM2BPublicKeyRSA](),
	decoderFor[gt.TPM2BSensitiveData](),
	decoderFor[gt.TPM2BTimeout](),
	decoderFor[gt.TPMLAlg](),
	decoderFor[gt.TPMLCC](),
	decoderFor[gt.TPMLDigest](),
	decoderFor[gt.TPMLPCRSelection](),
	decoderFor[gt.TPMSContext](),
	decoderFor[gt.TPMTPublicParms](),
	decoderFor[gt.TPMTRSADecrypt](),
	decoderFor[gt.TPMTSigScheme](),
	decoderFor[gt.TPMTSignature](),
	decoderFor[gt.TPMTSymDef](),
	decoderFor[gt.TPMTSymDefObject](),
	decoderFor[gt.TPMTTKAuth](),
	decoderFor[gt.TPMTTKCreation](),
	decoderFor[gt.TPMTTKHashCheck](),
	decoderFor[gt.TPMTTKVerified](),
)

type typedDecoder struct {
	t   reflect.Type
	dec fieldDecoder
}

// decoderFor decodes a T through go-tpm's Unmarshal; how many octets it
// took is the length of its encoding, which go-tpm's codec reproduces
// octet for octet.
func decoderFor[T gt.Marshallable, P interface {
	*T
	gt.Unmarshallable
}]() typedDecoder {
	return typedDecoder{reflect.TypeFor[T](), func(b []byte, dst reflect.Value) (_ int, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r) // go-tpm cannot encode what it decoded
			}
		}()
		v, err := gt.Unmarshal[T, P](b)
		if err != nil {
			return 0, err
		}
		n := len(gt.Marshal(*v))
		if n > len(b) {
			// go-tpm read past the end without saying so (e.g. a size
			// it zero-filled): the parameter is short.
			return 0, errInsufficient
		}
		dst.Set(reflect.ValueOf(v).Elem())
		return n, nil
	}}
}

func decoders(ds ...typedDecoder) map[reflect.Type]fieldDecoder {
	m := make(map[reflect.Type]fieldDecoder, len(ds))
	for _, d := range ds {
		m[d.t] = d.dec
	}
	return m
}
