package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

// The API of a lib is compared by gorelease (golang.org/x/exp/cmd/gorelease),
// a tool directive of this module: it type-checks the module as a user
// downloads it, lists the compatible and incompatible changes since a base
// version, and suggests the smallest version those changes allow (before
// v1, a new minor version for any change to the API).

// goreleaseReport is what gorelease says of a module against a base version.
type goreleaseReport struct {
	// text is gorelease's report, as it prints it.
	text string
	// suggested is the version gorelease suggests; empty when it cannot
	// (the report says why).
	suggested string
	// incompatible says whether the report lists incompatible changes.
	incompatible bool
}

var suggestedVersion = regexp.MustCompile(`(?m)^Suggested version: (v\S+)`)

// gorelease runs gorelease in dir, a module's directory, against base. The
// module proxy lists no version of the module above base to it (a list
// file in a proxy of its own, first in GOPROXY), as gorelease suggests a
// version only against the latest one.
func (c *checker) gorelease(ctx context.Context, m repoModule, dir, base string) (goreleaseReport, error) {
	ep, err := module.EscapePath(m.Path)
	if err != nil {
		return goreleaseReport{}, err
	}
	view := filepath.Join(c.work, "gorelease", strings.ReplaceAll(m.Dir, "/", "_")+"@"+base)
	listDir := filepath.Join(view, filepath.FromSlash(ep), "@v")
	if err := os.MkdirAll(listDir, 0o755); err != nil {
		return goreleaseReport{}, err
	}
	var list []string
	for _, rel := range c.hist[m.Path] {
		if semver.Compare(rel.Version, base) <= 0 {
			list = append(list, rel.Version)
		}
	}
	if err := os.WriteFile(filepath.Join(listDir, "list"), []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		return goreleaseReport{}, err
	}
	// GOSUMDB=off: gorelease's `go list -m -u all` reads the newest go.mod
	// of every dependency for its retractions, and the checksum database
	// is slow or out of reach from many machines; those files are read,
	// never built. The check's own module cache serves, as a file proxy,
	// what an earlier run of this check fetched.
	env := append(c.goEnv(), "GOSUMDB=off")
	for i, kv := range env {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case "GOPROXY":
			env[i] = "GOPROXY=file://" + filepath.ToSlash(view) + "," + v
		case "GOFLAGS":
			env[i] = "GOFLAGS=-mod=mod " + v
		}
	}
	// The snapshot's go.sum lacks our modules' sums (scripts/tidy.sh
	// resolves them locally); gorelease would stop at that.
	text, err := runIn(ctx, dir, env, "go", "mod", "download", "all")
	if err != nil {
		return goreleaseReport{}, fmt.Errorf("go mod download all in %s: %w\n%s", m.Dir, err, indent(text))
	}
	text, err = runIn(ctx, dir, env, c.tools.gorelease, "-base="+base)
	if err != nil {
		return goreleaseReport{}, fmt.Errorf("gorelease -base=%s in %s: %w\n%s", base, m.Dir, err, indent(text))
	}
	r := goreleaseReport{text: text, incompatible: strings.Contains(text, "## incompatible changes")}
	if s := suggestedVersion.FindStringSubmatch(text); s != nil {
		r.suggested = s[1]
	}
	return r, nil
}

// runIn runs name with args in dir (env nil: this process's environment)
// and returns its output, standard error included, trimmed.
func runIn(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// snapshot unpacks the module m at a commit (the work tree when commit is
// empty) into a directory of its own under c.work, as the proxy serves it,
// and returns the directory: gorelease refuses a repository with
// uncommitted changes, and a snapshot has no repository. version only
// labels the zip.
func (c *checker) snapshot(m repoModule, version, commit string) (string, error) {
	at := commit
	if at == "" {
		at = "worktree"
	}
	dir := filepath.Join(c.work, "snapshots", strings.ReplaceAll(m.Dir, "/", "_")+"@"+at)
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

// checkAPI applies semantic versioning to a lib: the step from its previous
// version to its current one must be at least what gorelease suggests for
// the changes between them, and changes made since the current version was
// released must not be incompatible while versions.yaml still names it.
func (c *checker) checkAPI(ctx context.Context, m repoModule) (failures, notes []string) {
	version := c.vers.version[m.Path]
	cur, prev := currentRelease(c.hist[m.Path], version)
	if prev != nil {
		f, n := c.checkReleaseStep(ctx, m, *prev, cur)
		failures, notes = append(failures, f...), append(notes, n...)
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
	dir, err := c.snapshot(m, version, "")
	if err != nil {
		return append(failures, fmt.Sprintf("%s: unpack the work tree: %v", m.Dir, err)), notes
	}
	rep, err := c.gorelease(ctx, m, dir, version)
	if err != nil {
		return append(failures, err.Error()), notes
	}
	since := fmt.Sprintf("since %s (%s; %d files, %d commits)", version, cur.where(), len(files), commits)
	if rep.incompatible {
		return append(failures, fmt.Sprintf("%s: incompatible API changes %s while versions.yaml still names %s: release them as %s or later, or undo them:\n%s",
			m.Dir, since, version, or(rep.suggested, "a new version"), indent(rep.text))), notes
	}
	return failures, append(notes, fmt.Sprintf("%s: changes %s, not released: gorelease suggests %s for the next release", m.Dir, since, or(rep.suggested, "(none: "+lastLines(rep.text, 1)+")")))
}

// checkReleaseStep checks the step from the release prev to the release
// cur against what gorelease suggests for cur's content over prev.
func (c *checker) checkReleaseStep(ctx context.Context, m repoModule, prev, cur release) (failures, notes []string) {
	dir, err := c.snapshot(m, cur.Version, cur.Commit)
	if err != nil {
		return []string{fmt.Sprintf("%s: unpack %s from %s: %v", m.Dir, cur.Version, cur.where(), err)}, nil
	}
	rep, err := c.gorelease(ctx, m, dir, prev.Version)
	switch {
	case err != nil:
		return []string{err.Error()}, nil
	case rep.suggested == "":
		return []string{fmt.Sprintf("%s: gorelease cannot check %s -> %s:\n%s", m.Dir, prev.Version, cur.Version, indent(rep.text))}, nil
	case semver.Compare(cur.Version, rep.suggested) < 0:
		return []string{fmt.Sprintf("%s: %s -> %s, but for the changes since %s gorelease suggests %s at least:\n%s",
			m.Dir, prev.Version, cur.Version, prev.Version, rep.suggested, indent(rep.text))}, nil
	}
	return nil, []string{fmt.Sprintf("%s: %s -> %s fits the changes since %s (gorelease suggests %s)", m.Dir, prev.Version, cur.Version, prev.Version, rep.suggested)}
}

// tools are the paths of the executables of this module's tool directives.
type tools struct {
	gorelease string
	multimod  string
}

// findTools builds the tools of the module in dir (this module's own
// directory), the packages its tool directives name, into bin. It does not
// ask `go tool -n` where the build cache keeps them: on a cache that has
// never built a tool, that prints a path that does not exist
// (golang/go#74650), and release-check failed on a fresh machine.
func findTools(ctx context.Context, dir, bin string) (tools, error) {
	var t tools
	list := exec.CommandContext(ctx, "go", "list", "tool")
	list.Dir = dir
	list.Env = append(slices.Clone(os.Environ()), "GOWORK=off")
	var stderr bytes.Buffer
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		return t, fmt.Errorf("go list tool in %s (the module of tools/release): %w\n%s", dir, err, indent(stderr.String()))
	}
	pkgs := strings.Fields(string(out))
	for name, dst := range map[string]*string{"gorelease": &t.gorelease, "multimod": &t.multimod} {
		i := slices.IndexFunc(pkgs, func(p string) bool { return path.Base(p) == name })
		if i < 0 {
			return t, fmt.Errorf("%s: no tool directive in %s names it", name, dir)
		}
		exe := filepath.Join(bin, name)
		build := exec.CommandContext(ctx, "go", "build", "-o", exe, pkgs[i])
		build.Dir = dir
		build.Env = list.Env
		stderr.Reset()
		build.Stderr = &stderr
		if err := build.Run(); err != nil {
			return t, fmt.Errorf("go build %s in %s (the module of tools/release): %w\n%s", pkgs[i], dir, err, indent(stderr.String()))
		}
		*dst = exe
	}
	return t, nil
}
