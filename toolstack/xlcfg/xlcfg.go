// Package xlcfg reads xl domain configuration files (xl.cfg(5), the
// syntax of Xen's libxlu config parser): `KEY = VALUE` settings separated
// by newlines or semicolons, where a VALUE is a number, a string in single
// or double quotes, or a list of them in brackets that may span lines
// (a trailing comma allowed); `#` starts a comment. The project's dom0
// command reads a guest's kernel, ramdisk, command line, type, devices
// and device-model arguments from it.
package xlcfg

import (
	"fmt"
	"strconv"
	"strings"
)

// Value is a setting's value: a string or number (Str) or a list (List).
type Value struct {
	Str    string
	List   []string
	IsList bool
}

// Config is a parsed file, settings in the order they first appear; a
// later setting of the same key replaces an earlier one, as in xl.
type Config struct {
	keys   []string
	values map[string]Value
}

// Get returns a setting's string value and whether it is set as one.
func (c *Config) Get(key string) (string, bool) {
	v, ok := c.values[key]
	if !ok || v.IsList {
		return "", false
	}
	return v.Str, true
}

// List returns a setting's list value (a single string counts as a
// one-element list, as xl accepts).
func (c *Config) List(key string) []string {
	v, ok := c.values[key]
	if !ok {
		return nil
	}
	if !v.IsList {
		return []string{v.Str}
	}
	return v.List
}

// Keys lists the settings in order.
func (c *Config) Keys() []string { return append([]string(nil), c.keys...) }

// Parse reads a configuration file's text.
func Parse(text string) (*Config, error) {
	p := &parser{s: text, line: 1}
	c := &Config{values: map[string]Value{}}
	for {
		p.skipSpace(true)
		if p.eof() {
			return c, nil
		}
		key, err := p.ident()
		if err != nil {
			return nil, err
		}
		p.skipSpace(false)
		if !p.take('=') {
			return nil, p.errorf("expected '=' after %q", key)
		}
		p.skipSpace(true)
		v, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if _, dup := c.values[key]; !dup {
			c.keys = append(c.keys, key)
		}
		c.values[key] = v
		p.skipSpace(false)
		if !p.eof() && !p.take(';') && !p.take('\n') {
			return nil, p.errorf("unexpected %q after the value of %s", p.s[p.i], key)
		}
	}
}

type parser struct {
	s    string
	i    int
	line int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("line %d: %s", p.line, fmt.Sprintf(format, a...))
}

func (p *parser) take(c byte) bool {
	if !p.eof() && p.s[p.i] == c {
		if c == '\n' {
			p.line++
		}
		p.i++
		return true
	}
	return false
}

// skipSpace skips blanks and comments, and newlines and semicolons too
// when newlines is set.
func (p *parser) skipSpace(newlines bool) {
	for !p.eof() {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			p.i++
		case c == '#':
			for !p.eof() && p.s[p.i] != '\n' {
				p.i++
			}
		case newlines && (c == '\n' || c == ';'):
			p.take(c)
		default:
			return
		}
	}
}

func isIdent(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && (c >= '0' && c <= '9' || c == '.' || c == '-')
}

func (p *parser) ident() (string, error) {
	start := p.i
	for !p.eof() && isIdent(p.s[p.i], p.i == start) {
		p.i++
	}
	if p.i == start {
		return "", p.errorf("expected a setting name, found %q", p.s[p.i])
	}
	return p.s[start:p.i], nil
}

func (p *parser) value() (Value, error) {
	if p.eof() {
		return Value{}, p.errorf("missing value")
	}
	if !p.take('[') {
		s, err := p.atom()
		return Value{Str: s}, err
	}
	v := Value{IsList: true}
	for {
		p.skipSpace(true)
		if p.take(']') {
			return v, nil
		}
		s, err := p.atom()
		if err != nil {
			return Value{}, err
		}
		v.List = append(v.List, s)
		p.skipSpace(true)
		if p.take(']') {
			return v, nil
		}
		if !p.take(',') {
			if p.eof() {
				return Value{}, p.errorf("list not closed with ']'")
			}
			return Value{}, p.errorf("expected ',' or ']' in a list, found %q", p.s[p.i])
		}
	}
}

// atom is a quoted string or a number.
func (p *parser) atom() (string, error) {
	if p.eof() {
		return "", p.errorf("missing value")
	}
	switch q := p.s[p.i]; q {
	case '"', '\'':
		p.i++
		var b strings.Builder
		for {
			if p.eof() {
				return "", p.errorf("string not closed with %c", q)
			}
			c := p.s[p.i]
			p.i++
			switch {
			case c == q:
				return b.String(), nil
			case c == '\n':
				return "", p.errorf("newline inside a string")
			case c == '\\' && q == '"' && !p.eof():
				e := p.s[p.i]
				p.i++
				switch e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(e)
				}
			default:
				b.WriteByte(c)
			}
		}
	default:
		start := p.i
		for !p.eof() && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == 'x' || p.s[p.i] == 'X' ||
			p.s[p.i] >= 'a' && p.s[p.i] <= 'f' || p.s[p.i] >= 'A' && p.s[p.i] <= 'F' || p.s[p.i] == '-') {
			p.i++
		}
		num := p.s[start:p.i]
		if _, err := strconv.ParseInt(num, 0, 64); err != nil || num == "" {
			p.i = start
			return "", p.errorf("expected a number, a quoted string or a list")
		}
		return num, nil
	}
}

// Cmdline is the kernel command line xl gives the guest: cmdline= if set
// (root= and extra= are then ignored), else "root=ROOT EXTRA" from what of
// root= and extra= is set (xl's parse_cmdline).
func (c *Config) Cmdline() string {
	if s, ok := c.Get("cmdline"); ok {
		return s
	}
	root, hasRoot := c.Get("root")
	extra, hasExtra := c.Get("extra")
	switch {
	case hasRoot && hasExtra:
		return "root=" + root + " " + extra
	case hasRoot:
		return "root=" + root
	default:
		return extra
	}
}

// Type is the guest's type: type= ("pv", "pvh", "hvm"), or the older
// builder="hvm"; xl's default is pv.
func (c *Config) Type() string {
	if t, ok := c.Get("type"); ok {
		return t
	}
	if b, ok := c.Get("builder"); ok && b == "hvm" {
		return "hvm"
	}
	return "pv"
}
