// Command imacheck runs inside a Linux guest with IMA on and checks that
// the TPM's PCR 10 holds what the IMA measurement list says: it rebuilds
// each entry's template data from
// /sys/kernel/security/ima/ascii_runtime_measurements (templates ima-ng
// and ima-sig: the d-ng and n-ng fields, and an empty signature), checks
// the SHA-1 template hash listed there, replays every PCR 10 bank the TPM
// has (the kernel extends each bank with the template data's digest in
// that bank's hash since Linux 5.8; a violation, listed with a zero hash,
// extends all ones) and compares the result with TPM2_PCR_Read through
// /dev/tpmrm0. It prints "IMA-OK <bank> <entries> <value>" per bank, or
// "IMA-FAIL <why>", and exits non-zero on a failure.
package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

const list = "/sys/kernel/security/ima/ascii_runtime_measurements"

// entry is one line of the list.
type entry struct {
	pcr          string
	templateHash []byte // SHA-1, as listed
	data         []byte // the template data, rebuilt
}

func field(b []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// parse rebuilds one line's template data: "PCR SHA1 TEMPLATE ALGO:DIGEST NAME [SIG]".
func parse(line string) (entry, error) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return entry{}, fmt.Errorf("short line %q", line)
	}
	th, err := hex.DecodeString(f[1])
	if err != nil {
		return entry{}, fmt.Errorf("template hash in %q: %v", line, err)
	}
	if f[2] != "ima-ng" && f[2] != "ima-sig" {
		return entry{}, fmt.Errorf("template %s is not ima-ng or ima-sig", f[2])
	}
	algo, digest, ok := strings.Cut(f[3], ":")
	d, err := hex.DecodeString(digest)
	if !ok || err != nil {
		return entry{}, fmt.Errorf("digest field %q", f[3])
	}
	name := strings.Join(f[4:], " ")
	if f[2] == "ima-sig" && len(f) > 5 {
		return entry{}, fmt.Errorf("entry %q carries a signature; only unsigned entries are rebuilt", line)
	}
	var data []byte
	data = append(data, field(append(append([]byte(algo+":"), 0), d...))...)
	data = append(data, field(append([]byte(name), 0))...)
	if f[2] == "ima-sig" {
		data = append(data, field(nil)...)
	}
	return entry{pcr: f[0], templateHash: th, data: data}, nil
}

func fail(format string, a ...any) {
	fmt.Printf("IMA-FAIL "+format+"\n", a...)
	os.Exit(1)
}

// readList reads and rebuilds the PCR 10 entries.
func readList() ([]entry, error) {
	fh, err := os.Open(list)
	if err != nil {
		return nil, fmt.Errorf("%v (is IMA on, securityfs mounted?)", err)
	}
	defer fh.Close()
	var entries []entry
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		e, err := parse(sc.Text())
		if err != nil {
			return nil, err
		}
		if e.pcr != "10" {
			continue
		}
		violation := bytes.Equal(e.templateHash, make([]byte, sha1.Size))
		if h := sha1.Sum(e.data); !violation && !bytes.Equal(h[:], e.templateHash) {
			return nil, fmt.Errorf("rebuilt template data of %q does not hash to the listed %x", sc.Text(), e.templateHash)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no PCR 10 entries in %s", list)
	}
	return entries, sc.Err()
}

type bank struct {
	alg gt.TPMAlgID
	h   crypto.Hash
	n   string
}

var banks = []bank{{gt.TPMAlgSHA1, crypto.SHA1, "sha1"}, {gt.TPMAlgSHA256, crypto.SHA256, "sha256"}}

// replay computes PCR 10 of a bank from the entries.
func replay(b bank, entries []entry) []byte {
	pcr := make([]byte, b.h.Size())
	for _, e := range entries {
		var d []byte
		if bytes.Equal(e.templateHash, make([]byte, sha1.Size)) {
			d = bytes.Repeat([]byte{0xff}, b.h.Size())
		} else {
			w := b.h.New()
			w.Write(e.data)
			d = w.Sum(nil)
		}
		w := b.h.New()
		w.Write(pcr)
		w.Write(d)
		pcr = w.Sum(nil)
	}
	return pcr
}

func main() {
	tpm, err := linuxtpm.Open("/dev/tpmrm0")
	if err != nil {
		fail("%v", err)
	}
	defer tpm.Close()
	// Anything root reads may add an entry meanwhile: take the list on
	// both sides of the PCR reads and start again if it grew.
	for attempt := 1; ; attempt++ {
		entries, err := readList()
		if err != nil {
			fail("%v", err)
		}
		values := map[string][]byte{}
		for _, b := range banks {
			r, err := (gt.PCRRead{PCRSelectionIn: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{
				{Hash: b.alg, PCRSelect: gt.PCClientCompatible.PCRs(10)}}}}).Execute(tpm)
			if err != nil || len(r.PCRValues.Digests) != 1 {
				fail("PCR_Read of PCR 10 %s: %v", b.n, err)
			}
			values[b.n] = r.PCRValues.Digests[0].Buffer
		}
		after, err := readList()
		if err != nil {
			fail("%v", err)
		}
		if len(after) != len(entries) {
			if attempt == 5 {
				fail("the measurement list keeps growing (%d, then %d entries)", len(entries), len(after))
			}
			continue
		}
		for _, b := range banks {
			if want := replay(b, entries); !bytes.Equal(values[b.n], want) {
				fail("PCR 10 %s is %x, the %d entries replay to %x", b.n, values[b.n], len(entries), want)
			}
			fmt.Printf("IMA-OK %s %d %x\n", b.n, len(entries), values[b.n])
		}
		return
	}
}
