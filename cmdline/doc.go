package cmdline

import (
	"errors"
	"fmt"
	"strings"
)

// Markdown renders the spec as a Markdown table (option, value, default,
// meaning), one row per option in the spec's order.
func (s Spec) Markdown() string {
	var b strings.Builder
	b.WriteString("| option | value | default | meaning |\n|---|---|---|---|\n")
	for _, o := range s {
		value, def := "flag", "—"
		if !o.Flag {
			value = code(o.ValueForm())
		}
		if o.Default != "" {
			def = code(o.Default)
		}
		meaning := sentence(o.Help)
		if o.Doc != "" {
			meaning += " " + o.Doc
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(o.Name), value, def, cell(meaning))
	}
	return b.String()
}

// sentence makes a Help line a sentence: a capital letter when it starts
// with a plain word, a full stop at the end.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	word, _, _ := strings.Cut(s, " ")
	if word != "" && strings.Trim(word, "abcdefghijklmnopqrstuvwxyz,") == "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	if s != "" && !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// code is s as inline code in a table cell.
func code(s string) string { return "`" + cell(s) + "`" }

// cell escapes what would end a Markdown table cell or row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// CheckDocs reports what the spec leaves a reader to guess: an option
// without Help, a value option whose form is neither listed (Values) nor
// described (Form), a flag with a value's fields, a default the option
// itself would refuse, a name declared twice.
func (s Spec) CheckDocs() error {
	var errs []error
	seen := map[string]bool{}
	for _, o := range s {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("option %q: %s", o.Name, fmt.Sprintf(format, a...)))
		}
		if o.Name == "" || strings.ContainsAny(o.Name, "= \t\n") {
			bad("not a name")
		}
		if seen[o.Name] {
			bad("declared twice")
		}
		seen[o.Name] = true
		if strings.TrimSpace(o.Help) == "" {
			bad("no Help")
		}
		if strings.Contains(o.Help, "\n") {
			bad("Help is more than one line (say more in Doc)")
		}
		if o.Flag {
			if len(o.Values) > 0 || o.Check != nil || o.Form != "" || o.Default != "" {
				bad("a flag takes no value, so has no Values, Check, Form or Default")
			}
			continue
		}
		if len(o.Values) == 0 && o.Form == "" {
			bad("free-form value without a Form saying how to write it")
		}
		if len(o.Values) > 0 && o.Form != "" {
			bad("both Values and Form: Values already show the form")
		}
		if o.Default != "" {
			if _, err := (Spec{o}).Parse(o.Name + "=" + o.Default); err != nil {
				bad("default refused: %v", err)
			}
		}
	}
	return errors.Join(errs...)
}
