package main

import (
	"context"
	"errors"
	"fmt"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/exp/apidiff"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
	"golang.org/x/tools/go/packages"
)

// apiReport is the outcome of comparing two versions of a module's API.
type apiReport struct {
	incompatible []string
	compatible   []string
}

// String lists the changes, incompatible first, one a line.
func (r apiReport) String() string {
	var b strings.Builder
	for _, c := range r.incompatible {
		fmt.Fprintf(&b, "      incompatible: %s\n", c)
	}
	for _, c := range r.compatible {
		fmt.Fprintf(&b, "      compatible:   %s\n", c)
	}
	return b.String()
}

// snapshot unpacks the module m at a commit (the work tree when commit is
// empty) into a directory of its own under c.work and returns it. version
// only labels the zip.
func (c *checker) snapshot(m repoModule, version, commit string) (string, error) {
	label := commit
	if label == "" {
		label = "worktree"
	}
	dir := filepath.Join(c.work, "api", strings.ReplaceAll(m.Dir, "/", "_")+"@"+label)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	mv := module.Version{Path: m.Path, Version: version}
	zipFile := dir + ".zip"
	if err := writeZip(zipFile, c.repo, m, mv, commit); err != nil {
		return "", err
	}
	if err := modzip.Unzip(dir, mv, zipFile); err != nil {
		return "", err
	}
	return dir, makeWritable(dir)
}

// loadAPI type-checks the packages of module m at a commit (the work tree
// when commit is empty) outside the workspace, its own requirements served
// by the proxy, and returns the packages a user of the module can import:
// no main packages, nothing under internal/.
func (c *checker) loadAPI(ctx context.Context, m repoModule, version, commit string) (*apidiff.Module, error) {
	dir, err := c.snapshot(m, version, commit)
	if err != nil {
		return nil, fmt.Errorf("unpack %s at %s: %w", m.Dir, label(commit), err)
	}
	cfg := &packages.Config{
		Context:    ctx,
		Mode:       packages.NeedName | packages.NeedTypes,
		Dir:        dir,
		Env:        c.goEnv(),
		BuildFlags: []string{"-mod=mod", "-trimpath"},
	}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		return nil, fmt.Errorf("load %s at %s: %w", m.Dir, label(commit), err)
	}
	var errs []error
	api := &apidiff.Module{Path: m.Path}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			errs = append(errs, e)
		}
		if p.Name == "main" || p.Types == nil || slices.Contains(strings.Split(p.PkgPath, "/"), "internal") {
			continue
		}
		api.Packages = append(api.Packages, p.Types)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s at %s does not build: %w", m.Dir, label(commit), errors.Join(errs...))
	}
	slices.SortFunc(api.Packages, func(a, b *types.Package) int { return strings.Compare(a.Path(), b.Path()) })
	return api, nil
}

// label names a commit, or the work tree, in messages.
func label(commit string) string {
	if commit == "" {
		return "the work tree"
	}
	return commit[:12]
}

// compareAPI compares module m's API at two commits (the work tree when a
// commit is empty).
func (c *checker) compareAPI(ctx context.Context, m repoModule, oldVersion, oldCommit, newVersion, newCommit string) (apiReport, error) {
	old, err := c.loadAPI(ctx, m, oldVersion, oldCommit)
	if err != nil {
		return apiReport{}, err
	}
	cur, err := c.loadAPI(ctx, m, newVersion, newCommit)
	if err != nil {
		return apiReport{}, err
	}
	var r apiReport
	for _, ch := range apidiff.ModuleChanges(old, cur).Changes {
		if ch.Compatible {
			r.compatible = append(r.compatible, ch.Message)
		} else {
			r.incompatible = append(r.incompatible, ch.Message)
		}
	}
	return r, nil
}

// checkAPI applies semantic versioning to a lib: the step from its previous
// version to its current one must be as large as the API changes between
// them ask, and changes made since the current version was released must
// not be incompatible while versions.yaml still names that version.
func (c *checker) checkAPI(ctx context.Context, m repoModule) (failures, notes []string) {
	version := c.vers.version[m.Path]
	cur, prev := currentRelease(c.hist[m.Path], version)
	if prev != nil {
		rep, err := c.compareAPI(ctx, m, prev.Version, prev.Commit, cur.Version, cur.Commit)
		switch {
		case err != nil:
			failures = append(failures, fmt.Sprintf("%s: compare %s with %s: %v", m.Dir, prev.Version, cur.Version, err))
		default:
			need := requiredBump(prev.Version, len(rep.incompatible) > 0, len(rep.compatible) > 0)
			got := bumpBetween(prev.Version, cur.Version)
			switch {
			case got == bumpNone:
				failures = append(failures, fmt.Sprintf("%s: %s follows %s but is not greater", m.Dir, cur.Version, prev.Version))
			case got < need:
				failures = append(failures, fmt.Sprintf("%s: %s -> %s is a %s release, but the API changes since %s need a %s release (%s at least):\n%s",
					m.Dir, prev.Version, cur.Version, got, prev.Version, need, nextVersion(prev.Version, need), rep))
			default:
				notes = append(notes, fmt.Sprintf("%s: %s -> %s (%s release) fits the API changes since %s: %d incompatible, %d compatible",
					m.Dir, prev.Version, cur.Version, got, prev.Version, len(rep.incompatible), len(rep.compatible)))
			}
		}
	}
	if cur.Commit == "" {
		return failures, notes
	}
	files, commits, err := c.repo.changes(ctx, m, c.mods, cur)
	if err != nil {
		return append(failures, fmt.Sprintf("%s: changes since %s: %v", m.Dir, version, err)), notes
	}
	if len(files) == 0 {
		return failures, append(notes, fmt.Sprintf("%s: no changes since %s (%s)", m.Dir, version, cur.where()))
	}
	rep, err := c.compareAPI(ctx, m, version, cur.Commit, version, "")
	if err != nil {
		return append(failures, fmt.Sprintf("%s: compare %s with the work tree: %v", m.Dir, version, err)), notes
	}
	since := fmt.Sprintf("since %s (%s; %d files, %d commits)", version, cur.where(), len(files), commits)
	switch {
	case len(rep.incompatible) > 0:
		need := requiredBump(version, true, true)
		failures = append(failures, fmt.Sprintf("%s: incompatible API changes %s while versions.yaml still names %s: release them as %s or later, or undo them:\n%s",
			m.Dir, since, version, nextVersion(version, need), rep))
	case len(rep.compatible) > 0:
		notes = append(notes, fmt.Sprintf("%s: compatible API additions %s, not released: the next release is %s:\n%s",
			m.Dir, since, nextVersion(version, bumpMinor), rep))
	default:
		notes = append(notes, fmt.Sprintf("%s: changes %s, none to the API: the next release can be %s", m.Dir, since, nextVersion(version, bumpPatch)))
	}
	return failures, notes
}
