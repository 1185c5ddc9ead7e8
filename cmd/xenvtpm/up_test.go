package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/toolstack/xlcfg"
)

func TestParseListV(t *testing.T) {
	out := []byte(`Name                                        ID   Mem VCPUs	State	Time(s)   UUID                            Reason-Code	Security Label
Domain-0                                     0   512     2     r-----      30.1 00000000-0000-0000-0000-000000000000        -                -
guest                                        3   256     1     ---s--       2.1 4f1c2a9e-0000-4000-8000-000000000001        1                -
vtpm1                                        2    32     1     -b----       0.4 4f1c2a9e-0000-4000-8000-000000000002        -                -
`)
	if e, s, r, err := parseListV(out, "guest"); !e || !s || r != 1 || err != nil {
		t.Errorf("guest: %v %v %d %v", e, s, r, err)
	}
	if e, s, _, err := parseListV(out, "vtpm1"); !e || s || err != nil {
		t.Errorf("vtpm1: %v %v %v", e, s, err)
	}
	if _, _, _, err := parseListV(out, "other"); err == nil {
		t.Error("a missing line was not an error")
	}
}

func TestAction(t *testing.T) {
	c, _ := xlcfg.Parse(`on_reboot = "destroy"; on_crash = "restart"`)
	for reason, want := range map[int]string{reasonPoweroff: "destroy", reasonReboot: "destroy", reasonCrash: "restart", reasonWatchdog: "destroy"} {
		if got := action(c, reason); got != want {
			t.Errorf("reason %d: %s, want %s", reason, got, want)
		}
	}
	d, _ := xlcfg.Parse(``)
	if got := action(d, reasonReboot); got != "restart" {
		t.Errorf("default on_reboot = %s", got)
	}
}

func TestHVMSocket(t *testing.T) {
	c, _ := xlcfg.Parse(`device_model_args_hvm = [ "-chardev", "socket,id=other,path=/x", "-chardev", "socket,id=chrtpm,path=/run/xenvtpm/g.sock",
		"-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0" ]`)
	if p, err := hvmSocket(c); err != nil || p != "/run/xenvtpm/g.sock" {
		t.Fatalf("hvmSocket = %q, %v", p, err)
	}
	for _, bad := range []string{
		`device_model_args_hvm = [ "-chardev", "socket,id=chrtpm,path=/s", "-device", "tpm-tis,tpmdev=tpm0" ]`,
		`device_model_args_hvm = [ "-chardev", "socket,id=c,path=/s", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis" ]`,
		`device_model_args_hvm = [ "-chardev", "socket,id=chrtpm,path=/s", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm" ]`,
		``,
	} {
		c, _ := xlcfg.Parse(bad)
		if _, err := hvmSocket(c); err == nil || !strings.Contains(err.Error(), "device_model_args_hvm") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestPlanUp(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	vtpm := write("vtpm.cfg", `name = "vtpm1"`)
	pv := write("pv.cfg", `name = "g"; type = "pvh"; kernel = "/k"; ramdisk = "/r"; extra = "console=hvc0"; vtpm = [ "backend=vtpm1" ]`)
	p, err := planUp(vtpm, pv)
	if err != nil || p.hvm || !p.measure || p.boot.kernel != "/k" || p.boot.cmdline != "console=hvc0" {
		t.Fatalf("PV plan %+v, %v", p, err)
	}
	novtpm := write("novtpm.cfg", `name = "g"; type = "pv"; kernel = "/k"`)
	if _, err := planUp(vtpm, novtpm); err == nil || !strings.Contains(err.Error(), "backend=vtpm1") {
		t.Fatalf("PV guest without the vtpm device: %v", err)
	}
	hvm := write("hvm.cfg", `name = "w"; type = "hvm"; device_model_args_hvm = [ "-chardev", "socket,id=c,path=/s", "-tpmdev", "emulator,id=t,chardev=c", "-device", "tpm-tis,tpmdev=t" ]`)
	if p, err := planUp(vtpm, hvm); err != nil || !p.hvm || p.socket != "/s" {
		t.Fatalf("HVM plan %+v, %v", p, err)
	}
}
