package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// buildProxy writes a file-based module proxy (GOPROXY=file://dir) that
// serves every release of every released module: for each, the module zip
// made from the commit of the release (or from the work tree for a release
// being prepared), its go.mod, its .info, and the module's version list.
// A release that cannot be served (its commit has no such module, or the
// files make no valid module zip) is left out and reported in the error;
// the others are written.
func buildProxy(ctx context.Context, r repo, mods map[string]repoModule, vers versions, hist map[string][]release, dir string) error {
	var errs []error
	for _, p := range vers.released() {
		m, ok := mods[p]
		if !ok {
			errs = append(errs, fmt.Errorf("versions.yaml names %s, which no go.mod of the repository declares", p))
			continue
		}
		ep, err := module.EscapePath(p)
		if err != nil {
			return err
		}
		base := filepath.Join(dir, filepath.FromSlash(ep), "@v")
		if err := os.MkdirAll(base, 0o755); err != nil {
			return err
		}
		var list []string
		for _, rel := range hist[p] {
			if err := writeRelease(ctx, r, m, rel, base); err != nil {
				errs = append(errs, fmt.Errorf("%s %s from %s: %w", m.Dir, rel.Version, rel.where(), err))
				continue
			}
			list = append(list, rel.Version)
		}
		if err := os.WriteFile(filepath.Join(base, "list"), []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// writeRelease writes the .zip, .mod and .info files of one release.
func writeRelease(ctx context.Context, r repo, m repoModule, rel release, base string) error {
	mv := module.Version{Path: m.Path, Version: rel.Version}
	ev, err := module.EscapeVersion(rel.Version)
	if err != nil {
		return err
	}
	var gomod []byte
	if rel.Commit == "" {
		gomod, err = os.ReadFile(filepath.Join(r.root, filepath.FromSlash(m.Dir), "go.mod"))
	} else {
		var out string
		out, err = r.git(ctx, "show", rel.Commit+":"+pathInRepo(m.Dir, "go.mod"))
		gomod = []byte(out)
	}
	if err != nil {
		return fmt.Errorf("no go.mod in %s: %w", m.Dir, err)
	}
	if got := modfile.ModulePath(gomod); got != m.Path {
		return fmt.Errorf("%s/go.mod declares module %q, not %s", m.Dir, got, m.Path)
	}
	if err := writeZip(filepath.Join(base, ev+".zip"), r, m, mv, rel.Commit); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(base, ev+".mod"), gomod, 0o644); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    string
	}{rel.Version, rel.Time.UTC().Format("2006-01-02T15:04:05Z")})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(base, ev+".info"), info, 0o644)
}

// writeZip writes the module zip of m at the commit, or of the work tree
// when commit is empty, to the file zipPath.
func writeZip(zipPath string, r repo, m repoModule, mv module.Version, commit string) (err error) {
	f, err := os.Create(zipPath)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(zipPath) // no half-written zip; err says what failed
		}
	}()
	if commit == "" {
		return modzip.CreateFromDir(f, mv, filepath.Join(r.root, filepath.FromSlash(m.Dir)))
	}
	subdir := m.Dir
	if subdir == "." {
		subdir = ""
	}
	return modzip.CreateFromVCS(f, mv, r.root, commit, subdir)
}

// pathInRepo joins a module directory and a file name into a path git
// understands in `git show <commit>:<path>`.
func pathInRepo(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// zipPath is where the proxy in dir keeps the zip of a module version.
func zipPath(dir string, mv module.Version) (string, error) {
	ep, err := module.EscapePath(mv.Path)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(mv.Version)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.FromSlash(ep), "@v", ev+".zip"), nil
}

// removeAll removes a tree that may hold read-only directories, such as a
// module cache.
func removeAll(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// makeWritable lets go write go.mod and go.sum in a module unzipped from the
// proxy (modzip.Unzip makes its files read-only).
func makeWritable(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
}
