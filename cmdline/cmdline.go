// Package cmdline parses a domain's command line (xl's `extra=`, handed to
// the domain in hvm_start_info) into typed options.
//
// The syntax is the stub domains': space-separated `key=value` pairs and
// bare flags. Each image declares the options it accepts; anything else, a
// value outside an option's set, or a repeated option is an error that names
// the offending word and lists what is accepted, so a domain never starts
// half-configured.
//
// A Spec is also the options' documentation: Usage prints it on the console,
// Markdown renders it for docs/options.md (cmdline/gendoc), so every fact a
// user needs about an option (its value form, default and meaning) is written
// once, in the Option.
package cmdline

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Option declares one accepted word.
type Option struct {
	Name string
	// Flag options take no value (`selftest`); others need `name=value`.
	Flag bool
	// Values, if set, is the closed set of accepted values; Check, if set,
	// validates free-form values.
	Values []string
	Check  func(string) error
	// Form describes a free-form value for the reader (`N/s|N/m|N/h`,
	// `ADDR`); options with Values show those instead.
	Form string
	// Default applies when the option is absent (value options only).
	Default string
	// Help is the option's meaning in one line, printed by Usage.
	Help string
	// Doc, if set, is what the documentation says after Help: why, what
	// follows from a choice, how the option plays with others. Markdown.
	Doc string
}

// ValueForm is how the option's value is written: "" for a flag, the
// accepted values joined by |, Form, or VALUE.
func (o Option) ValueForm() string {
	switch {
	case o.Flag:
		return ""
	case len(o.Values) > 0:
		return strings.Join(o.Values, "|")
	case o.Form != "":
		return o.Form
	}
	return "VALUE"
}

// Spec is the set of options an image accepts.
type Spec []Option

// Values is a parsed command line.
type Values struct {
	vals  map[string]string
	flags map[string]bool
}

// Get returns an option's value (its default when absent).
func (v Values) Get(name string) string { return v.vals[name] }

// Has reports whether a flag was given.
func (v Values) Has(name string) bool { return v.flags[name] }

func (s Spec) find(name string) *Option {
	for i := range s {
		if s[i].Name == name {
			return &s[i]
		}
	}
	return nil
}

// Usage lists the accepted options, one per line.
func (s Spec) Usage() string {
	var b strings.Builder
	opts := slices.Clone(s)
	sort.Slice(opts, func(i, j int) bool { return opts[i].Name < opts[j].Name })
	for _, o := range opts {
		if o.Flag {
			fmt.Fprintf(&b, "  %s", o.Name)
		} else {
			fmt.Fprintf(&b, "  %s=%s", o.Name, o.ValueForm())
		}
		if o.Default != "" {
			fmt.Fprintf(&b, " (default %s)", o.Default)
		}
		if o.Help != "" {
			fmt.Fprintf(&b, ": %s", o.Help)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Parse checks line against the spec.
func (s Spec) Parse(line string) (Values, error) {
	v := Values{vals: map[string]string{}, flags: map[string]bool{}}
	seen := map[string]bool{}
	for _, word := range strings.Fields(line) {
		name, val, hasVal := strings.Cut(word, "=")
		o := s.find(name)
		if o == nil {
			return v, fmt.Errorf("unknown option %q; accepted:\n%s", word, s.Usage())
		}
		if seen[name] {
			return v, fmt.Errorf("option %q given twice", name)
		}
		seen[name] = true
		if o.Flag {
			if hasVal {
				return v, fmt.Errorf("option %q is a flag and takes no value (got %q)", name, word)
			}
			v.flags[name] = true
			continue
		}
		if !hasVal || val == "" {
			return v, fmt.Errorf("option %q needs a value: %s=VALUE", name, name)
		}
		if len(o.Values) > 0 && !slices.Contains(o.Values, val) {
			return v, fmt.Errorf("option %s=%q: accepted values are %s", name, val, strings.Join(o.Values, "|"))
		}
		if o.Check != nil {
			if err := o.Check(val); err != nil {
				return v, fmt.Errorf("option %s=%q: %v", name, val, err)
			}
		}
		v.vals[name] = val
	}
	for _, o := range s {
		if !o.Flag && !seen[o.Name] && o.Default != "" {
			v.vals[o.Name] = o.Default
		}
	}
	return v, nil
}
