package main

import (
	"debug/buildinfo"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// checkStatic reports whether the Go binary at path would run on an image
// with no C library: no ELF interpreter, no shared library, built with
// CGO_ENABLED=0 (and -trimpath, so no build machine paths leak into it);
// and whether it was built from modules at their versions: no dependency
// taken from a directory (a workspace module of go.work, or a replace by a
// local path), so that an image holds the lib versions its go.mod requires.
func checkStatic(path string) (string, error) {
	var p problems
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close() //nolint:errcheck // read only: Close loses nothing
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			p.add("%s: dynamically linked: it has an ELF interpreter", path)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		p.add("%s: %w", path, err)
	} else if len(libs) > 0 {
		p.add("%s: needs shared libraries %v", path, libs)
	}

	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" {
		p.add("%s: built with CGO_ENABLED=%q, want 0", path, settings["CGO_ENABLED"])
	}
	if settings["-trimpath"] != "true" {
		p.add("%s: built without -trimpath", path)
	}
	for _, dep := range bi.Deps {
		switch {
		case dep.Replace != nil && dep.Replace.Sum == "":
			p.add("%s: %s %s was replaced by the directory %s: built from a local copy, not the version go.mod requires", path, dep.Path, dep.Version, dep.Replace.Path)
		case dep.Replace == nil && (dep.Version == "(devel)" || dep.Sum == ""):
			p.add("%s: %s is at %s, with no checksum: built from a workspace module (go.work?), not the version go.mod requires", path, dep.Path, dep.Version)
		}
	}
	if err := p.err(); err != nil {
		return "", err
	}
	// With -trimpath, go leaves -ldflags out of the build info; -s shows as
	// a missing symbol table.
	stripped := "with symbols"
	if f.Section(".symtab") == nil {
		stripped = "stripped"
	}
	return fmt.Sprintf("%s: static, %s, %s, CGO_ENABLED=0 -trimpath, %s, %d dependencies at their versions", path, bi.GoVersion, bi.Path, stripped, len(bi.Deps)), nil
}

// modulePath returns the module path dir/go.mod declares.
func modulePath(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("%s/go.mod declares no module", dir)
}

// checkMain reports whether the Go binary at path is the build of the
// module want: its main module, with its main package at the module's root.
func checkMain(path, want string) error {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bi.Main.Path != want || bi.Path != want {
		return fmt.Errorf("%s: is %s of module %s, want the module %s: was another directory copied?", path, bi.Path, bi.Main.Path, want)
	}
	return nil
}

func runStatic(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("static", flag.ContinueOnError)
	moduleDir := fs.String("module", "", "the binaries must be builds of the module whose go.mod is in this directory, its main package at the root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: static [-module DIR] BINARY...", errUsage) //nolint:staticcheck // ST1005: a usage line, "..." means repeated
	}
	var want string
	if *moduleDir != "" {
		var err error
		if want, err = modulePath(*moduleDir); err != nil {
			return err
		}
	}
	var p problems
	for _, path := range fs.Args() {
		summary, err := checkStatic(path)
		if err == nil && want != "" {
			err = checkMain(path, want)
		}
		if err != nil {
			p = append(p, err)
			continue
		}
		fmt.Fprintln(stdout, summary)
	}
	return p.err()
}
