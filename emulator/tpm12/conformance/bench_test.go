package conformance

import (
	"crypto"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// BenchmarkSideBySide runs the same commands on the engine in process,
// on vtpmd serving it and on swtpm in TPM 1.2 mode, both over their TCP
// sockets, in one run. The daemons' figures include the socket round
// trip; the engine's do not.
func BenchmarkSideBySide(b *testing.B) {
	eng, err := tpm12.New(tpm12.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ref := &reference{p: swtpmtest.Start12(b)}
	daemon := &reference{p: swtpmtest.StartVtpmd12(b)}
	cmds := []struct {
		name string
		cmd  []byte
	}{
		{"Extend", cmd(0xC1, ordExtend, u32(10), digest1)},
		{"PcrRead", cmd(0xC1, ordPCRRead, u32(10))},
		{"GetRandom32", cmd(0xC1, ordGetRandom, u32(32))},
	}
	for _, side := range []struct {
		name string
		tr   tpm
	}{{"engine", engine{eng}}, {"vtpmd", daemon}, {"swtpm", ref}} {
		if rc, _, e := do(side.tr, ordStartup, u16(1)); rc != 0 || e != "" {
			b.Fatalf("%s Startup: rc %#x %s", side.name, rc, e)
		}
		for _, c := range cmds {
			b.Run(side.name+"/"+c.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := side.tr.send(0, c.cmd); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSealSideBySide seals and unseals under the SRK on the engine
// and on swtpm, each operation with its fresh sessions as a client
// makes them (OSAP for Seal, two OIAP for Unseal).
func BenchmarkSealSideBySide(b *testing.B) {
	names, pair := benchSides(b)
	data := sha1Of([]byte("data"))
	for i, side := range names {
		c := pair[i]
		_, blob := c.seal(true, khSRK, data, nil, []byte("secret"))
		b.Run(side+"/Seal", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r, _ := c.seal(true, khSRK, data, nil, []byte("secret")); r[:4] != "rc=0" {
					b.Fatal(r)
				}
			}
		})
		b.Run(side+"/Unseal", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r, _ := c.unseal(false, false, c.srk, data, blob); r[:4] != "rc=0" {
					b.Fatal(r)
				}
			}
		})
	}
}

// BenchmarkKeysSideBySide signs with a loaded RSA-2048 signing key and
// creates RSA-2048 keys under the SRK on the engine, vtpmd and swtpm, each
// operation on the fresh session a client opens for it (OIAP for Sign,
// OSAP for CreateWrapKey). Run with -benchtime=300x for Sign and 20x
// for CreateWrapKey (key generation dominates and varies).
func BenchmarkKeysSideBySide(b *testing.B) {
	names, pair := benchSides(b)
	msg := sha1Of([]byte("to be signed"))
	template := keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 2048, nil)
	for i, side := range names {
		k := &keyer{pair[i], map[string][]byte{}, map[string][]byte{}}
		if r := k.createWrapKey("sign", u32(khSRK), k.srk, keyAuth, true, template); !strings.HasPrefix(r, "rc=0 ") {
			b.Fatalf("%s CreateWrapKey: %s", side, r)
		}
		if r := k.loadKey2("sign", u32(khSRK), k.srk, k.blobs["sign"]); !strings.HasPrefix(r, "rc=0 ") {
			b.Fatalf("%s LoadKey2: %s", side, r)
		}
		b.Run(side+"/Sign2048", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r := k.sign("sign", keyAuth, crypto.SHA1, msg); !strings.HasSuffix(r, "verifies=true") {
					b.Fatal(r)
				}
			}
		})
		b.Run(side+"/CreateWrapKey2048", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r := k.createWrapKey("new", u32(khSRK), k.srk, keyAuth, true, template); !strings.HasPrefix(r, "rc=0 ") {
					b.Fatal(r)
				}
			}
		})
	}
}

// BenchmarkQuote2SideBySide runs TPM_Quote2 over PCRs 0-23 with an
// RSA-2048 signing key on the engine, vtpmd and swtpm, each quote on a
// fresh OIAP session as a client makes it (run with -benchtime=300x or
// more).
func BenchmarkQuote2SideBySide(b *testing.B) {
	names, pair := benchSides(b)
	keyAuth := sha1Of([]byte("key"))
	params := append(append(sha1Of([]byte("nonce")), u16(3)...), 0xFF, 0xFF, 0xFF, 0)
	for i, side := range names {
		c := pair[i]
		a := &attester{c, map[string]*attKey{}}
		if r := a.createKey("q", keyTemplate(false, keySigning, 0, 1, esNone, ssSHA1, 2048, nil), keyAuth); !strings.Contains(r, "LoadKey2 rc=0 ") {
			b.Fatalf("%s key: %s", side, r)
		}
		b.Run(side+"/Quote2", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r, _ := a.keyAuth1("q", keyAuth, ordQuote2, a.handle("q"), params); r[:4] != "rc=0" {
					b.Fatal(r)
				}
			}
		})
	}
}

// benchSides are the three TPMs the authorized benchmarks compare in one
// run, each started and owned (an RSA-2048 SRK with the well-known
// secret): the engine in process, vtpmd serving it and swtpm (the last
// two over their TCP sockets).
func benchSides(b *testing.B) ([]string, []*client) {
	pair := newPair(b)
	d := &reference{p: swtpmtest.StartVtpmd12(b)}
	if rc, _, e := do(d, ordStartup, u16(1)); rc != 0 || e != "" {
		b.Fatalf("vtpmd Startup: rc %#x %s", rc, e)
	}
	names, sides := []string{"engine", "vtpmd", "swtpm"}, []*client{pair[0], {tr: d}, pair[1]}
	owner := sha1Of([]byte("owner"))
	for i, c := range sides {
		c.readEK()
		c.owner, c.srk = owner, make([]byte, 20)
		if r := c.takeOwnership(5, c.oaep(owner), c.oaep(c.srk), srkParams(0x11, 0, 2048, 2), owner); r[:4] != "rc=0" {
			b.Fatalf("%s TakeOwnership: %s", names[i], r)
		}
	}
	return names, sides
}
