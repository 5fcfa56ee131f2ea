package main

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
)

// checkStatic reports whether the Go binary at path would run on an image
// with no C library: no ELF interpreter, no shared library, built with
// CGO_ENABLED=0 (and -trimpath, so no build machine paths leak into it).
func checkStatic(path string) (string, error) {
	var p problems
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
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
	if err := p.err(); err != nil {
		return "", err
	}
	// With -trimpath, go leaves -ldflags out of the build info; -s shows as
	// a missing symbol table.
	stripped := "with symbols"
	if f.Section(".symtab") == nil {
		stripped = "stripped"
	}
	return fmt.Sprintf("%s: static, %s, %s, CGO_ENABLED=0 -trimpath, %s", path, bi.GoVersion, bi.Path, stripped), nil
}

func runStatic(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: static BINARY...", errUsage)
	}
	var p problems
	for _, path := range args {
		summary, err := checkStatic(path)
		if err != nil {
			p = append(p, err)
			continue
		}
		fmt.Fprintln(stdout, summary)
	}
	return p.err()
}
