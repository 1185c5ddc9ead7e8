// Package cmdline parses a domain's command line (xl's `extra=`, handed to
// the domain in hvm_start_info) into typed options.
//
// The syntax is the stub domains': space-separated `key=value` pairs and
// bare flags. Each image declares the options it accepts; anything else, a
// value outside an option's set, or a repeated option is an error that names
// the offending word and lists what is accepted, so a domain never starts
// half-configured.
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
	// Default applies when the option is absent (value options only).
	Default string
	Help    string
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
		switch {
		case o.Flag:
			fmt.Fprintf(&b, "  %s", o.Name)
		case len(o.Values) > 0:
			fmt.Fprintf(&b, "  %s=%s", o.Name, strings.Join(o.Values, "|"))
		default:
			fmt.Fprintf(&b, "  %s=VALUE", o.Name)
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
