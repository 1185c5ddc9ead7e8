//go:build tamago

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/build/mgrclient/options"
	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// scale is the client of many vtpm devices (devices=N): it connects to
// every device under device/vtpm at once, holds them connected for hold=
// seconds (a manager with that many vTPMs attached, idle), then has each
// connection save and load its own random key rounds= times, all at once,
// and reports throughput and latency.
//
// Console lines beyond main's:
//
//	MGRCLIENT-CONNECTED <n> in <ms>ms
//	MGRCLIENT-FIGURE scale ...
func scale(ctx context.Context, table *grant.Table, want, rounds, hold int) {
	names, err := dom.Store.Directory(ctx, "device/vtpm")
	if err == nil && len(names) != want {
		err = fmt.Errorf("device/vtpm lists %d devices, devices=%d", len(names), want)
	}
	if !check("devices", err) {
		finish()
	}
	slices.SortFunc(names, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})

	fronts := make([]*tpmfront.Front, len(names))
	errs := make([]error, len(names))
	t0 := time.Now()
	var wg sync.WaitGroup
	// Connecting takes a xenstore transaction, and xenstored allows a
	// domain only a few at once (10 by default): open a few at a time.
	sem := make(chan struct{}, xenstoreTransactions)
	for i, n := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			fronts[i], errs[i] = tpmfront.Open(ctx, tpmfront.Config{Store: dom.Store, Pages: grant.TableSharer{Table: table}, Events: dom.Events, Node: "device/vtpm/" + n})
		})
	}
	wg.Wait()
	if !check("tpmfront-open-all", firstErr(names, errs)) {
		finish()
	}
	fmt.Printf("MGRCLIENT-CONNECTED %d in %dms\n", len(fronts), time.Since(t0).Milliseconds())

	if hold > 0 {
		fmt.Printf("MGRCLIENT-HOLDING %ds\n", hold)
		time.Sleep(time.Duration(hold) * time.Second)
	}

	saveLat := make([][]time.Duration, len(fronts))
	loadLat := make([][]time.Duration, len(fronts))
	t0 = time.Now()
	for i, f := range fronts {
		wg.Go(func() {
			var rt roundTrips
			rt, errs[i] = saveLoad(ctx, f, rounds)
			saveLat[i], loadLat[i] = rt.save, rt.load
		})
	}
	wg.Wait()
	took := time.Since(t0)
	if check("savehashkey-all-own-key-back", firstErr(names, errs)) {
		saves := len(fronts) * rounds
		fmt.Printf("MGRCLIENT-FIGURE scale connections=%d rounds=%d saves=%d in %.2fs: %.0f SAVEHASHKEY+LOADHASHKEY/s; savehashkey %s; loadhashkey %s\n",
			len(fronts), rounds, saves, took.Seconds(), float64(saves)/took.Seconds(), latency(slices.Concat(saveLat...)), latency(slices.Concat(loadLat...)))
	}

	for i, f := range fronts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, cl := context.WithTimeout(ctx, time.Minute)
			defer cl()
			errs[i] = f.Close(c)
		})
	}
	wg.Wait()
	check("tpmfront-close-all", firstErr(names, errs))
	finish()
}

// xenstoreTransactions bounds the connections opened or closed at once.
const xenstoreTransactions = 8

// roundTrips is what saveLoad measured.
type roundTrips struct {
	save, load []time.Duration
	last       []byte // the blob saved and loaded back last
}

// stepError is a failure of one of saveLoad's steps, named as the
// console's MGRCLIENT-OK/FAIL lines name it.
type stepError struct {
	step string // savehashkey or loadhashkey-roundtrip
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// saveLoad saves a fresh random blob through f and loads it back, rounds
// times; what comes back must be this connection's own blob.
func saveLoad(ctx context.Context, f *tpmfront.Front, rounds int) (roundTrips, error) {
	var rt roundTrips
	send := func(req []byte) ([]byte, error) {
		c, cl := context.WithTimeout(ctx, 2*time.Minute)
		defer cl()
		return f.Send(c, 0, req)
	}
	for r := range rounds {
		blob := make([]byte, options.BlobSize)
		rand.Read(blob)
		req, err := proto.EncodeSaveHashKey(blob)
		if err != nil {
			return rt, &stepError{"savehashkey", err}
		}
		t := time.Now()
		rsp, err := send(req)
		if err == nil {
			_, err = proto.ParseResponse(rsp, proto.TagVTPMReq)
		}
		if err != nil {
			return rt, &stepError{"savehashkey", fmt.Errorf("round %d: %w", r, err)}
		}
		rt.save = append(rt.save, time.Since(t))
		t = time.Now()
		rsp, err = send(proto.EncodeLoadHashKey())
		var got []byte
		if err == nil {
			got, err = proto.DecodeLoadHashKeyResponse(rsp)
		}
		if err == nil && !bytes.Equal(got, blob) {
			err = fmt.Errorf("loaded %x, saved %x", got, blob)
		}
		if err != nil {
			return rt, &stepError{"loadhashkey-roundtrip", fmt.Errorf("round %d: %w", r, err)}
		}
		rt.load = append(rt.load, time.Since(t))
		rt.last = blob
	}
	return rt, nil
}

// firstErr names the first device whose error is not nil, and how many
// failed.
func firstErr(names []string, errs []error) error {
	n := 0
	var first error
	for i, err := range errs {
		if err != nil {
			if first == nil {
				first = fmt.Errorf("device %s: %w", names[i], err)
			}
			n++
		}
	}
	if first != nil && n > 1 {
		return fmt.Errorf("%d devices failed; the first: %w", n, first)
	}
	return first
}

// latency renders mean, p50, p99 and the maximum in milliseconds.
func latency(l []time.Duration) string {
	if len(l) == 0 {
		return "none"
	}
	s := slices.Sorted(slices.Values(l))
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("mean %s p50 %s p99 %s max %s", ms(sum/time.Duration(len(s))), ms(s[len(s)/2]), ms(s[len(s)*99/100]), ms(s[len(s)-1]))
}
