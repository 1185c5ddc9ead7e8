package ekcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// FuzzCheck feeds Check arbitrary certificates for a CA of its own; seeds
// are that CA's certificates for both EK types and near misses. Whatever
// Check accepts is for an RSA-2048 or P-256 key and names a TPM that
// round-trips through the subjectAltName encoding.
func FuzzCheck(f *testing.F) {
	ca, caCert, err := NewCA("fuzz CA", "ecdsa")
	if err != nil {
		f.Fatal(err)
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb, _ := window()
	for _, k := range []any{&rk.PublicKey, &ek.PublicKey} {
		der, err := Issue(ca, caCert, k, testInfo, nb, NoExpiry)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		f.Add(der[:len(der)-1])
		f.Add(append(bytes.Clone(der), 0))
	}
	f.Add(caCert.Raw)
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := Check(der, caCert, nil)
		if err != nil {
			return
		}
		if _, err := ekKeyUsage(c.EK); err != nil {
			t.Fatalf("accepted EK: %v", err)
		}
		san, err := marshalSAN(c.Info)
		if err != nil {
			t.Fatalf("accepted Info %+v does not encode: %v", c.Info, err)
		}
		if info, err := parseSAN(san); err != nil || info != c.Info {
			t.Fatalf("Info %+v round-trips to %+v, %v", c.Info, info, err)
		}
	})
}

// FuzzParseSAN: what parseSAN accepts re-encodes to a subjectAltName that
// parses to the same TPMInfo.
func FuzzParseSAN(f *testing.F) {
	good, _ := marshalSAN(testInfo)
	f.Add(good)
	f.Add(sanWith(one(oidTPMVersion, "id:0007003f"), one(oidTPMManufacturer, "id:49465800"), one(oidTPMModel, "SLB9670")))
	f.Add(plusDNSName(good))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		info, err := parseSAN(der)
		if err != nil {
			return
		}
		again, err := marshalSAN(info)
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", info, err)
		}
		if info2, err := parseSAN(again); err != nil || info2 != info {
			t.Fatalf("%+v round-trips to %+v, %v", info, info2, err)
		}
	})
}

// FuzzParseSDA: parseSDA accepts only the one DER encoding marshalSDA
// writes for what it returns.
func FuzzParseSDA(f *testing.F) {
	good, _ := marshalSDA(TPMSpecification{SpecFamily, SpecLevel, SpecRevision})
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		s, err := parseSDA(der)
		if err != nil {
			return
		}
		again, err := marshalSDA(s)
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("%+v: re-encoded %x, %v; was %x", s, again, err, der)
		}
	})
}
