//go:build tamago

// Command mgrclient is the manager domain's test client: a PVH domain that
// plays a vTPM domain's part towards the manager (Xen vtpmmgr's vTPM
// protocol, mgrdomain/proto) over its vtpm device (drivers/tpmfront; its xl
// config says vtpm=["backend=<manager>"], with a fixed uuid= so that runs
// are the same vTPM to the manager).
//
// It sends SAVEHASHKEY (the 64-byte form: a 32-byte key and a 32-byte hash)
// with random bytes, LOADHASHKEY, and checks the round trip; then a GetRandom
// passed through to the hardware TPM. With save=0 it only loads, and
// expect= checks what it loads, so a run after a manager restart shows the
// key survived (options in build/mgrclient/options, documented in
// docs/options.md).
//
// Console lines dom0 parses:
//
//	MGRCLIENT-CHECK <name> PASS|FAIL: <detail>
//	MGRCLIENT-SAVED <hex>           the blob saved (for a later expect=)
//	MGRCLIENT-REFUSED <code>        refused= was met
//	MGRCLIENT-HOLDING <n>s          hold=: connected, waiting
//	MGRCLIENT-FIGURE <name> ...     timings
//	MGRCLIENT-RESULT PASS|FAIL
//
// The domain powers off on PASS and crashes on FAIL.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/build/mgrclient/options"
	"github.com/xenvtpm/xenvtpm/domain"
	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// Version is set by the build.
var Version = "dev"

var (
	dom    *domain.Domain
	failed []string
)

func check(name string, err error) bool {
	if err != nil {
		fmt.Printf("MGRCLIENT-CHECK %s FAIL: %v\n", name, err)
		failed = append(failed, name)
		return false
	}
	fmt.Printf("MGRCLIENT-CHECK %s PASS\n", name)
	return true
}

func finish() {
	if len(failed) > 0 {
		fmt.Printf("MGRCLIENT-RESULT FAIL %v\n", failed)
		dom.Exit(1)
	}
	fmt.Println("MGRCLIENT-RESULT PASS")
	dom.Exit(0)
}

func main() {
	dom = domain.Start("mgrclient", options.Spec())
	dom.Log.Infof("xenvtpm mgrclient %s: domid=%d save=%s expect=%q", Version, dom.ID, dom.Config.Get("save"), dom.Config.Get("expect"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	table, err := grant.NewTable(xen.GrantOps{H: dom.Xen}, grant.FrontendWindow, 0)
	if !check("grant-table", err) {
		finish()
	}
	var devices, rounds, hold int
	fmt.Sscanf(dom.Config.Get("devices"), "%d", &devices)
	fmt.Sscanf(dom.Config.Get("rounds"), "%d", &rounds)
	fmt.Sscanf(dom.Config.Get("hold"), "%d", &hold)
	if devices > 1 {
		scale(ctx, table, devices, rounds, hold) // ends the domain
	}

	t0 := time.Now()
	f, err := tpmfront.Open(ctx, tpmfront.Config{Store: dom.Store, Pages: grant.TableSharer{Table: table}, Events: dom.Events, Node: dom.Config.Get("node")})
	if !check("tpmfront-open", err) {
		finish()
	}
	be, beID := f.Backend()
	fmt.Printf("MGRCLIENT-FIGURE connect_ms=%d backend=%s backend_domid=%d\n", time.Since(t0).Milliseconds(), be, beID)

	send := func(req []byte) ([]byte, error) {
		c, cl := context.WithTimeout(ctx, time.Minute)
		defer cl()
		return f.Send(c, 0, req)
	}
	load := func() ([]byte, error) {
		rsp, err := send(proto.EncodeLoadHashKey())
		if err != nil {
			return nil, err
		}
		return proto.DecodeLoadHashKeyResponse(rsp)
	}

	var refused uint32
	fmt.Sscanf(dom.Config.Get("refused"), "%d", &refused)
	if refused != 0 {
		req, _ := proto.EncodeSaveHashKey(make([]byte, options.BlobSize))
		rsp, err := send(req)
		if err == nil {
			_, err = proto.ParseResponse(rsp, proto.TagVTPMReq)
			var pe *proto.Error
			switch {
			case err == nil:
				err = fmt.Errorf("SAVEHASHKEY accepted; want return code %d", refused)
			case errors.As(err, &pe) && pe.Code == refused:
				fmt.Printf("MGRCLIENT-REFUSED %d\n", pe.Code)
				err = nil
			}
		}
		check("savehashkey-refused", err)
		finish()
	}

	if want := dom.Config.Get("expect"); want != "" {
		got, err := load()
		if err == nil {
			if w, _ := hex.DecodeString(want); !bytes.Equal(got, w) {
				err = fmt.Errorf("loaded %x, want %s", got, want)
			}
		}
		check("load-expected", err)
	}

	if dom.Config.Get("save") == "1" {
		rt, err := saveLoad(ctx, f, rounds)
		var se *stepError
		switch {
		case errors.As(err, &se):
			check(se.step, se.err)
		case err != nil:
			check("savehashkey", err)
		default:
			check("savehashkey", nil)
			check("loadhashkey-roundtrip", nil)
			fmt.Printf("MGRCLIENT-SAVED %x\n", rt.last)
			fmt.Printf("MGRCLIENT-FIGURE savehashkey_roundtrip %s over %d (manager disk commit + NV increment)\n", latency(rt.save), len(rt.save))
			fmt.Printf("MGRCLIENT-FIGURE loadhashkey_roundtrip %s over %d\n", latency(rt.load), len(rt.load))
		}
	} else {
		got, err := load()
		if check("loadhashkey", err) {
			fmt.Printf("MGRCLIENT-LOADED %x\n", got)
		}
	}

	t := time.Now()
	rsp, err := send(proto.EncodeGetRandom(32))
	var rnd []byte
	if err == nil {
		rnd, err = proto.DecodeGetRandomResponse(rsp)
	}
	if err == nil && len(rnd) != 32 {
		err = fmt.Errorf("got %d bytes, asked for 32", len(rnd))
	}
	if err == nil && bytes.Equal(rnd, make([]byte, 32)) {
		err = errors.New("32 zero bytes")
	}
	if check("getrandom-passthrough", err) {
		fmt.Printf("MGRCLIENT-FIGURE getrandom32_us=%d\n", time.Since(t).Microseconds())
	}

	if hold > 0 {
		fmt.Printf("MGRCLIENT-HOLDING %ds\n", hold)
		time.Sleep(time.Duration(hold) * time.Second)
	}

	c, cl := context.WithTimeout(ctx, 30*time.Second)
	check("tpmfront-close", f.Close(c))
	cl()
	finish()
}
