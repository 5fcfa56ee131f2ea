package txmodel

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// TestCodesListsEveryCode reads this package's source for every Code*
// constant, so that a new code cannot be left out of Codes (and so out of
// the api's metrics).
func TestCodesListsEveryCode(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, f := range pkgs["txmodel"].Files {
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
