package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/domain"
)

// root is the module root, seen from this package's directory.
const root = "../.."

// TestOptionsDocUpToDate fails while docs/options.md is not what the
// images' Specs generate.
func TestOptionsDocUpToDate(t *testing.T) {
	got, err := os.ReadFile(filepath.Join(root, Output))
	if err != nil {
		t.Fatalf("%v\nGenerate it with `make docs` (go run ./cmdline/gendoc).", err)
	}
	want := Generate()
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	i := 0
	for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
		i++
	}
	line := func(l []string) string {
		if i < len(l) {
			return l[i]
		}
		return "(end of file)"
	}
	t.Errorf("%s differs from the options the images declare (cmdline.Spec), from line %d:\n  file:  %s\n  Specs: %s\n"+
		"Regenerate it with `make docs` (go run ./cmdline/gendoc) and commit it; change an option in its Spec, never in %s.",
		Output, i+1, line(gl), line(wl), Output)
}

// TestSpecsDocumented fails when an option leaves a reader guessing (no
// help, no value form, a default it would itself refuse).
func TestSpecsDocumented(t *testing.T) {
	for _, im := range images {
		if err := domain.Spec(im.Spec()).CheckDocs(); err != nil {
			t.Errorf("%s (%s):\n%v", im.Name, specPackage(im.Spec), err)
		}
	}
}

// TestEveryImageListed fails when the Makefile builds an image whose
// options this generator does not document.
func TestEveryImageListed(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGES\s*[:?]?=(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no IMAGES line in the Makefile")
	}
	built := strings.Fields(string(m[1]))
	var listed []string
	for _, im := range images {
		listed = append(listed, im.Name)
	}
	for _, name := range built {
		if !slices.Contains(listed, name) {
			t.Errorf("the Makefile builds %s, but cmdline/gendoc's images list does not document its options", name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(built, name) {
			t.Errorf("cmdline/gendoc documents %s, which the Makefile's IMAGES does not build", name)
		}
	}
}

// TestImagesStartWithTheirSpec fails when an image's main package hands
// domain.Start a Spec other than the one documented for it (options
// declared inline would be missing from the documentation).
func TestImagesStartWithTheirSpec(t *testing.T) {
	for _, im := range images {
		want := modulePath + "/" + specPackage(im.Spec)
		calls, err := startCalls(filepath.Join(root, im.Main))
		if err != nil {
			t.Errorf("%s: %v", im.Name, err)
			continue
		}
		if len(calls) != 1 {
			t.Errorf("%s: %d calls of domain.Start in %s, want one", im.Name, len(calls), im.Main)
			continue
		}
		if calls[0] != want {
			t.Errorf("%s: domain.Start is given %s, want %s.Spec() (the Spec docs/options.md documents)", im.Name, calls[0], want)
		}
	}
}

// startCalls parses the Go files of a main package (whatever their build
// constraints) and returns, for each call domain.Start(name, spec), the
// import path P when spec is P.Spec(), else the spec's source text.
func startCalls(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var calls []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			return nil, err
		}
		imports := map[string]string{}
		for _, is := range f.Imports {
			path, _ := strconv.Unquote(is.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if is.Name != nil {
				local = is.Name.Name
			}
			imports[local] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isSelector(call.Fun, imports, modulePath+"/domain", "Start") || len(call.Args) != 2 {
				return true
			}
			arg := call.Args[1]
			if c, ok := arg.(*ast.CallExpr); ok && len(c.Args) == 0 {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Spec" {
					if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] != "" {
						calls = append(calls, imports[x.Name])
						return true
					}
				}
			}
			calls = append(calls, fset.Position(arg.Pos()).String()+": not a package's Spec()")
			return true
		})
	}
	return calls, nil
}

// isSelector reports whether e is pkg.name for the package imported as
// path.
func isSelector(e ast.Expr, imports map[string]string, path, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && imports[x.Name] == path
}
