package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// knownGap is a flow that passes on swtpm and fails on vtpmd today: the
// response code (or "check"/"exit" for a failed output check) it fails
// with, and the README "Not done yet" item it belongs to.
type knownGap struct {
	rc, readme string
}

// knownGaps lists the flows expected to fail on vtpmd. TestFlows fails
// when one of them passes (take it off the list) or fails differently.
// Every flow passes today.
var knownGaps = map[string]knownGap{}

// flowResult is one FLOW line: ok, or the failure's response code
// ("check" or "exit" when no TPM error was involved) and its text.
type flowResult struct {
	ok     bool
	rc     string
	detail string
}

var (
	flowLine = regexp.MustCompile(`^FLOW (\S+) (ok|FAIL (.*))$`)
	flowRC   = regexp.MustCompile(`rc=(0x[0-9a-f]+)`)
)

func parseFlows(out string) (map[string]flowResult, []string) {
	res := map[string]flowResult{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := flowLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		r := flowResult{ok: m[2] == "ok", detail: m[3]}
		if !r.ok {
			switch {
			case flowRC.MatchString(m[3]):
				r.rc = flowRC.FindStringSubmatch(m[3])[1]
			case strings.HasPrefix(m[3], "check:"):
				r.rc = "check"
			default:
				r.rc = "exit"
			}
		}
		res[m[1]] = r
		order = append(order, m[1])
	}
	return res, order
}

func TestParseFlows(t *testing.T) {
	res, order := parseFlows("noise\nFLOW a ok\nFLOW b FAIL tpm2_create rc=0x2d2\nFLOW c FAIL check: data differs\nFLOW d FAIL tpm2_x exit: usage\n")
	want := map[string]flowResult{
		"a": {ok: true},
		"b": {rc: "0x2d2", detail: "tpm2_create rc=0x2d2"},
		"c": {rc: "check", detail: "check: data differs"},
		"d": {rc: "exit", detail: "tpm2_x exit: usage"},
	}
	if len(order) != 4 || fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("parseFlows = %v %v", res, order)
	}
}

// TestFlows runs the user flows of test/tpm2tools/flows.sh (tpm2-tools
// 5.4) and fapi.sh (tpm2-tss FAPI with the ECC and the RSA profile)
// against Debian's swtpm and against vtpmd over the mssim and the swtpm
// protocol, each suite on fresh TPMs, and compares flow by flow: a flow
// swtpm passes must pass on vtpmd unless knownGaps lists it.
func TestFlows(t *testing.T) {
	for _, tool := range []string{"tpm2_startup", "tpm2_send", "tss2_provision", "swtpm", "xxd", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s not installed (apt-get install tpm2-tools libtss2-fapi1 swtpm xxd openssl)", tool)
		}
	}
	if _, err := os.Stat("/etc/tpm2-tss/fapi-profiles/P_RSA2048SHA256.json"); err != nil {
		t.Skip("SKIP: no FAPI profiles in /etc/tpm2-tss/fapi-profiles")
	}
	dir, err := filepath.Abs("../../test/tpm2tools")
	if err != nil {
		t.Fatal(err)
	}
	// Each suite runs on TPMs of its own, all at once: a flow spends
	// most of its time starting tools. flows.sh is cut in three shards.
	suites := []struct {
		name string
		args []string
		env  []string
		tcti string // the script's TCTI variable
	}{
		{"tools", []string{filepath.Join(dir, "flows.sh")}, []string{"FLOWS_SHARD=0/3"}, "TPM2TOOLS_TCTI"},
		{"tools", []string{filepath.Join(dir, "flows.sh")}, []string{"FLOWS_SHARD=1/3"}, "TPM2TOOLS_TCTI"},
		{"tools", []string{filepath.Join(dir, "flows.sh")}, []string{"FLOWS_SHARD=2/3"}, "TPM2TOOLS_TCTI"},
		{"fapi-ecc", []string{filepath.Join(dir, "fapi.sh"), "P_ECCP256SHA256"}, nil, "FAPI_TCTI"},
		{"fapi-rsa", []string{filepath.Join(dir, "fapi.sh"), "P_RSA2048SHA256"}, nil, "FAPI_TCTI"},
	}
	const ref = "swtpm"
	targetNames := []string{ref, "vtpmd-mssim", "vtpmd-swtpm"}
	// Fresh TPMs: one per suite and target.
	type run struct {
		suite, target, tcti string
		args, env           []string
		tctiVar, dir        string
		out                 string
		err                 error
		took                time.Duration
	}
	var runs []*run
	for _, s := range suites {
		for _, tg := range targetNames {
			var tcti string
			switch tg {
			case ref:
				tcti = fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", swtpmtest.Serve(t))
			case "vtpmd-mssim":
				td := startDaemon(t, t.TempDir())
				tcti = "mssim:host=127.0.0.1,port=" + strings.TrimPrefix(td.mssim, "127.0.0.1:")
			case "vtpmd-swtpm":
				td := startDaemon(t, t.TempDir())
				tcti = "swtpm:host=127.0.0.1,port=" + strings.TrimPrefix(td.swtpm, "127.0.0.1:")
			}
			runs = append(runs, &run{suite: s.name, target: tg, tcti: tcti, args: s.args, env: s.env, tctiVar: s.tcti, dir: t.TempDir()})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, "bash", r.args...)
			cmd.Dir = r.dir
			cmd.Env = append(append(os.Environ(), r.env...), r.tctiVar+"="+r.tcti)
			t0 := time.Now()
			b, err := cmd.CombinedOutput()
			r.out, r.err, r.took = string(b), err, time.Since(t0)
		}()
	}
	wg.Wait()
	t.Logf("%d scripts in %v", len(runs), time.Since(t0).Round(time.Second))
	for _, r := range runs {
		t.Logf("%s %v on %s: %v", r.suite, r.env, r.target, r.took.Round(100*time.Millisecond))
	}

	results := map[string]map[string]flowResult{} // target -> suite/flow -> result
	var flows []string
	for _, r := range runs {
		if r.err != nil {
			t.Errorf("%s on %s: %v\n%s", r.suite, r.target, r.err, r.out)
			continue
		}
		res, order := parseFlows(r.out)
		if len(order) == 0 {
			t.Errorf("%s on %s printed no FLOW lines:\n%s", r.suite, r.target, r.out)
		}
		if results[r.target] == nil {
			results[r.target] = map[string]flowResult{}
		}
		for _, f := range order {
			results[r.target][r.suite+"/"+f] = res[f]
			if r.target == ref {
				flows = append(flows, r.suite+"/"+f)
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range flows {
		seen[f] = true
		sw := results[ref][f]
		if !sw.ok {
			t.Logf("%s fails on swtpm too (%s)", f, sw.detail)
		}
		for _, tg := range targetNames[1:] {
			got, ok := results[tg][f]
			gap, isGap := knownGaps[f]
			switch {
			case !ok:
				t.Errorf("%s: no result on %s", f, tg)
			case isGap && got.ok:
				t.Errorf("%s passes on %s: take it off knownGaps (%q)", f, tg, gap.readme)
			case isGap && got.rc != gap.rc:
				t.Errorf("%s on %s: %s, known gap says rc %s", f, tg, got.detail, gap.rc)
			case isGap:
				t.Logf("%s on %s: known gap (%s): %s", f, tg, gap.readme, got.detail)
			case !got.ok && sw.ok:
				t.Errorf("%s fails on %s and passes on swtpm: %s", f, tg, got.detail)
			case !got.ok:
				t.Logf("%s fails on %s: %s", f, tg, got.detail)
			case !sw.ok:
				t.Logf("%s passes on %s, fails on swtpm", f, tg)
			}
		}
	}
	var stale []string
	for f := range knownGaps {
		if !seen[f] {
			stale = append(stale, f)
		}
	}
	sort.Strings(stale)
	for _, f := range stale {
		t.Errorf("known gap %s names no flow that ran", f)
	}
}
