package ekcert

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// tagDirectoryName is GeneralName's directoryName, [4] EXPLICIT Name
// (RFC 5280 section 4.2.1.6).
var tagDirectoryName = casn1.Tag(4).ContextSpecific().Constructed()

// formatID writes a TPM property as the profile's "id:" and eight
// hexadecimal digits.
func formatID(v uint32) string { return fmt.Sprintf("id:%08X", v) }

// parseID reads formatID's form; either case of hexadecimal digit is
// accepted, as manufacturers' certificates use both.
func parseID(s string) (uint32, error) {
	if len(s) != 11 || s[:3] != "id:" {
		return 0, fmt.Errorf("%q is not \"id:\" and eight hexadecimal digits", s)
	}
	for _, c := range s[3:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, fmt.Errorf("%q is not \"id:\" and eight hexadecimal digits", s)
		}
	}
	v, err := strconv.ParseUint(s[3:], 16, 32)
	return uint32(v), err
}

// marshalSAN encodes the subjectAltName: GeneralNames with one
// directoryName whose RDNs are tcg-at-tpmManufacturer, tcg-at-tpmModel and
// tcg-at-tpmVersion, one attribute each, values UTF8String.
func marshalSAN(info TPMInfo) ([]byte, error) {
	attrs := []struct {
		oid asn1.ObjectIdentifier
		val string
	}{
		{oidTPMManufacturer, formatID(info.Manufacturer)},
		{oidTPMModel, info.Model},
		{oidTPMVersion, formatID(info.Version)},
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tagDirectoryName, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, a := range attrs {
					b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
						b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(a.oid)
							b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) {
								b.AddBytes([]byte(a.val))
							})
						})
					})
				}
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ekcert: subjectAltName: %w", err)
	}
	return der, nil
}

// parseSAN reads what marshalSAN writes, in DER, and nothing else: one
// directoryName, each of the three TPM attributes exactly once (in any
// order), each in an RDN of its own, as a UTF8String.
func parseSAN(der []byte) (TPMInfo, error) {
	var info TPMInfo
	bad := func(what string) (TPMInfo, error) {
		return TPMInfo{}, errors.New("subjectAltName: " + what)
	}
	in := cryptobyte.String(der)
	var names, dn, rdns cryptobyte.String
	if !in.ReadASN1(&names, casn1.SEQUENCE) || !in.Empty() {
		return bad("not a GeneralNames")
	}
	if !names.ReadASN1(&dn, tagDirectoryName) {
		return bad("its first name is not a directoryName")
	}
	if !names.Empty() {
		return bad("more than the one directoryName")
	}
	if !dn.ReadASN1(&rdns, casn1.SEQUENCE) || !dn.Empty() {
		return bad("the directoryName is not a Name")
	}
	var seen [3]bool
	for !rdns.Empty() {
		var rdn, atv cryptobyte.String
		var oid asn1.ObjectIdentifier
		var val cryptobyte.String
		if !rdns.ReadASN1(&rdn, casn1.SET) || !rdn.ReadASN1(&atv, casn1.SEQUENCE) {
			return bad("malformed RDN")
		}
		if !rdn.Empty() {
			return bad("an RDN of more than one attribute")
		}
		if !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadASN1(&val, casn1.UTF8String) || !atv.Empty() {
			return bad("an attribute is not an OID and a UTF8String")
		}
		s := string(val)
		if !utf8.ValidString(s) {
			return bad("an attribute is not valid UTF-8")
		}
		var i int
		var err error
		switch {
		case oid.Equal(oidTPMManufacturer):
			i = 0
			info.Manufacturer, err = parseID(s)
		case oid.Equal(oidTPMModel):
			i = 1
			if s == "" || len(s) > strMax {
				err = errors.New("the model is not 1 to 255 bytes")
			}
			info.Model = s
		case oid.Equal(oidTPMVersion):
			i = 2
			info.Version, err = parseID(s)
		default:
			return bad("unknown attribute " + oid.String())
		}
		if err != nil {
			return bad(err.Error())
		}
		if seen[i] {
			return bad("attribute " + oid.String() + " twice")
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return bad("tcg-at-tpmManufacturer, tcg-at-tpmModel or tcg-at-tpmVersion missing")
	}
	return info, nil
}

// marshalSDA encodes the subjectDirectoryAttributes: one Attribute,
// tcg-at-tpmSpecification, whose one value is TPMSpecification ::=
// SEQUENCE { family UTF8String, level INTEGER, revision INTEGER }.
func marshalSDA(spec TPMSpecification) ([]byte, error) {
	if spec.Family == "" || len(spec.Family) > strMax || spec.Level < 0 || spec.Revision < 0 {
		return nil, errors.New("ekcert: bad TPM specification")
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidTPMSpecification)
			b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) {
						b.AddBytes([]byte(spec.Family))
					})
					b.AddASN1Int64(spec.Level)
					b.AddASN1Int64(spec.Revision)
				})
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ekcert: subjectDirectoryAttributes: %w", err)
	}
	return der, nil
}

// parseSDA reads what marshalSDA writes, in DER, and nothing else.
func parseSDA(der []byte) (TPMSpecification, error) {
	var spec TPMSpecification
	bad := func(what string) (TPMSpecification, error) {
		return TPMSpecification{}, errors.New("subjectDirectoryAttributes: " + what)
	}
	in := cryptobyte.String(der)
	var attrs, attr, values, value, family cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&attrs, casn1.SEQUENCE) || !in.Empty() ||
		!attrs.ReadASN1(&attr, casn1.SEQUENCE) || !attrs.Empty() {
		return bad("not one Attribute")
	}
	if !attr.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidTPMSpecification) {
		return bad("the attribute is not tcg-at-tpmSpecification")
	}
	if !attr.ReadASN1(&values, casn1.SET) || !attr.Empty() ||
		!values.ReadASN1(&value, casn1.SEQUENCE) || !values.Empty() {
		return bad("tcg-at-tpmSpecification has not one value")
	}
	if !value.ReadASN1(&family, casn1.UTF8String) ||
		!value.ReadASN1Integer(&spec.Level) || !value.ReadASN1Integer(&spec.Revision) || !value.Empty() {
		return bad("malformed TPMSpecification")
	}
	spec.Family = string(family)
	if spec.Family == "" || len(spec.Family) > strMax || !utf8.ValidString(spec.Family) || spec.Level < 0 || spec.Revision < 0 {
		return bad("TPMSpecification out of range")
	}
	return spec, nil
}
