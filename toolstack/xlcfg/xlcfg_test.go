package xlcfg

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c, err := Parse(`# an HVM guest
name = "win11"
type='hvm'; memory = 4096
vcpus=2 # two
device_model_args_hvm = [
    "-chardev", "socket,id=chrtpm,path=/run/xenvtpm/win11.sock",  # the bridge
    "-tpmdev","emulator,id=tpm0,chardev=chrtpm",
    '-device', "tpm-tis,tpmdev=tpm0",
]
vtpm = [ "backend=vtpm1,uuid=ac0a5b9e-cbe2-4c07-b43b-1f8bc5e1ea4d" ]
extra = "console=hvc0 \"quoted\""
memory = 2048
empty = []
`)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"name": "win11", "type": "hvm", "memory": "2048", "vcpus": "2", "extra": `console=hvc0 "quoted"`} {
		if got, ok := c.Get(key); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", key, got, ok, want)
		}
	}
	want := []string{"-chardev", "socket,id=chrtpm,path=/run/xenvtpm/win11.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"}
	if got := c.List("device_model_args_hvm"); !reflect.DeepEqual(got, want) {
		t.Errorf("device_model_args_hvm = %q", got)
	}
	if got := c.List("name"); !reflect.DeepEqual(got, []string{"win11"}) {
		t.Errorf("List of a string = %q", got)
	}
	if got := c.List("empty"); len(got) != 0 {
		t.Errorf("empty list = %q", got)
	}
	if _, ok := c.Get("vtpm"); ok {
		t.Error("Get of a list succeeded")
	}
	if got := strings.Join(c.Keys(), " "); got != "name type memory vcpus device_model_args_hvm vtpm extra empty" {
		t.Errorf("keys %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		`name "x"`, `name = "x`, `name = x`, `l = [ "a" "b" ]`, `l = [ "a",`, `= 3`, "s = \"a\nb\"", `a = 1 b = 2`,
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "line") {
			t.Errorf("Parse(%q): %v names no line", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`name = "a"; l = [ 'x', "y", ]` + "\n# c\nn=0x10")
	f.Add("k = [\n1,\n2\n]")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		for _, k := range c.Keys() {
			c.Get(k)
			c.List(k)
		}
	})
}

func TestCmdlineAndType(t *testing.T) {
	for text, want := range map[string]string{
		`cmdline = "a b"; root = "/dev/x"; extra = "c"`: "a b",
		`root = "/dev/x"; extra = "c"`:                  "root=/dev/x c",
		`root = "/dev/x"`:                               "root=/dev/x",
		`extra = "c"`:                                   "c",
		``:                                              "",
	} {
		c, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Cmdline(); got != want {
			t.Errorf("%s: Cmdline %q, want %q", text, got, want)
		}
	}
	for text, want := range map[string]string{`type = "pvh"`: "pvh", `builder = "hvm"`: "hvm", ``: "pv"} {
		c, _ := Parse(text)
		if got := c.Type(); got != want {
			t.Errorf("%s: Type %q, want %q", text, got, want)
		}
	}
}
