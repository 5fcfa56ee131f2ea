package txmodel

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCodesListsEveryCode reads this package's source for every Code*
// constant, so that a new code cannot be left out of Codes (and so out of
// the api's metrics).
func TestCodesListsEveryCode(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Code") {
						declared = append(declared, n.Name)
					}
				}
			}
		}
	}
	if len(declared) != len(Codes()) {
		t.Errorf("%d Code constants (%v), Codes lists %d", len(declared), declared, len(Codes()))
	}
	if !slices.Equal(Fields(), contractFields) {
		t.Errorf("Fields() = %v", Fields())
	}
}
