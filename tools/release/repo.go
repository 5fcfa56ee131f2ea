package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
)

// repo is the git repository that holds the modules.
type repo struct {
	// root is the absolute path of the work tree.
	root string
}

// findRepo returns the repository that holds dir.
func findRepo(ctx context.Context, dir string) (repo, error) {
	out, err := repo{root: dir}.git(ctx, "rev-parse", "--show-toplevel")
	if err != nil {
		return repo{}, fmt.Errorf("find the repository of %s: %w", dir, err)
	}
	return repo{root: strings.TrimSpace(out)}, nil
}

// git runs git in the repository and returns its standard output.
func (r repo) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.root}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// lines splits git's output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// repoModule is one module of the repository.
type repoModule struct {
	// Path is the module path its go.mod declares.
	Path string
	// Dir is its directory, slash-separated and relative to the repository
	// root; "." for the root.
	Dir string
}

// modules finds every go.mod of the work tree (tracked, or new and not
// ignored), test data left out, and returns the modules by path.
func (r repo) modules(ctx context.Context) (map[string]repoModule, error) {
	out, err := r.git(ctx, "ls-files", "--cached", "--others", "--exclude-standard", "--", "go.mod", ":(glob)**/go.mod")
	if err != nil {
		return nil, err
	}
	mods := map[string]repoModule{}
	for _, f := range lines(out) {
		if slices.Contains(strings.Split(f, "/"), "testdata") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(f)))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			return nil, err
		}
		p := modfile.ModulePath(data)
		if p == "" {
			return nil, fmt.Errorf("%s declares no module path", f)
		}
		if other, ok := mods[p]; ok {
			return nil, fmt.Errorf("%s and %s/go.mod both declare module %s", f, other.Dir, p)
		}
		mods[p] = repoModule{Path: p, Dir: path.Dir(f)}
	}
	return mods, nil
}

// release is one version of a module and the content it names.
type release struct {
	// Version is the module's version.
	Version string
	// Commit is the commit whose versions.yaml first named this version;
	// empty when only the work tree's versions.yaml names it (a release
	// being prepared).
	Commit string
	// Time is the commit's time.
	Time time.Time
}

// where names the release's content for messages.
func (rel release) where() string {
	if rel.Commit == "" {
		return "the work tree (not committed yet)"
	}
	return "commit " + rel.Commit[:12]
}

// history reads every version versions.yaml gave each released module,
// oldest first. A module's version is released by the commit that sets it:
// the first commit, along the first-parent history of HEAD, whose
// versions.yaml names the module at that version after a commit that named
// another version or none. The versions of the work tree's versions.yaml
// that no commit names yet are releases at the work tree. A version named
// twice keeps its first release. A commit whose versions.yaml does not parse
// changes nothing; its message is returned among the warnings.
func (r repo) history(ctx context.Context, current versions) (map[string][]release, []string, error) {
	hist := map[string][]release{}
	var warnings []string
	has := func(p, v string) bool {
		return slices.ContainsFunc(hist[p], func(rel release) bool { return rel.Version == v })
	}
	// In a shallow clone the history would start at the clone's depth and
	// every module would seem released there.
	if shallow, err := r.git(ctx, "rev-parse", "--is-shallow-repository"); err == nil && strings.TrimSpace(shallow) == "true" {
		return nil, nil, errors.New("the releases are read from the history of versions.yaml, and this clone is shallow: git fetch --unshallow (in CI: fetch the full history)")
	}
	out, err := r.git(ctx, "log", "--first-parent", "--reverse", "--format=%H %cI", "HEAD", "--", "versions.yaml")
	if err != nil {
		// A repository without commits has no history.
		if _, herr := r.git(ctx, "rev-parse", "--verify", "-q", "HEAD"); herr != nil {
			out = ""
		} else {
			return nil, nil, err
		}
	}
	prev := map[string]string{}
	for _, l := range lines(out) {
		hash, when, _ := strings.Cut(l, " ")
		t, err := time.Parse(time.RFC3339, when)
		if err != nil {
			return nil, nil, fmt.Errorf("commit %s: time %q: %w", hash, when, err)
		}
		data, err := r.git(ctx, "show", hash+":versions.yaml")
		if err != nil {
			data = "" // removed in this commit
		}
		v, err := parseVersions([]byte(data))
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("commit %s: %v (ignored)", hash[:12], err))
			continue
		}
		for p, ver := range v.version {
			if prev[p] != ver && !has(p, ver) {
				hist[p] = append(hist[p], release{Version: ver, Commit: hash, Time: t})
			}
		}
		prev = v.version
	}
	for p, ver := range current.version {
		if !has(p, ver) {
			hist[p] = append(hist[p], release{Version: ver, Time: time.Now().UTC().Truncate(time.Second)})
		}
	}
	return hist, warnings, nil
}

// currentRelease is the release of the module's current version, and the
// release before it if there is one.
func currentRelease(rels []release, version string) (cur release, prev *release) {
	for i, rel := range rels {
		if rel.Version == version {
			if i > 0 {
				p := rels[i-1]
				prev = &p
			}
			return rel, prev
		}
	}
	return release{}, nil
}

// pathspecs are the git pathspecs of a module's own files: its directory
// without the modules nested in it and without its CHANGELOG.md, which
// changes between releases without changing the module.
func pathspecs(m repoModule, all map[string]repoModule) []string {
	specs := []string{m.Dir}
	for _, o := range all {
		if o.Dir != m.Dir && (m.Dir == "." || strings.HasPrefix(o.Dir, m.Dir+"/")) {
			specs = append(specs, ":(exclude)"+o.Dir)
		}
	}
	slices.Sort(specs[1:])
	return append(specs, ":(exclude)"+path.Join(m.Dir, "CHANGELOG.md"))
}

// changes lists the files of the module that differ between the release
// and the work tree, and counts the commits since the release that touch
// them.
func (r repo) changes(ctx context.Context, m repoModule, all map[string]repoModule, rel release) (files []string, commits int, err error) {
	if rel.Commit == "" {
		return nil, 0, nil
	}
	specs := pathspecs(m, all)
	diff, err := r.git(ctx, append([]string{"diff", "--name-only", rel.Commit, "--"}, specs...)...)
	if err != nil {
		return nil, 0, err
	}
	untracked, err := r.git(ctx, append([]string{"ls-files", "--others", "--exclude-standard", "--"}, specs...)...)
	if err != nil {
		return nil, 0, err
	}
	files = append(lines(diff), lines(untracked)...)
	slices.Sort(files)
	count, err := r.git(ctx, append([]string{"rev-list", "--count", rel.Commit + "..HEAD", "--"}, specs...)...)
	if err != nil {
		return nil, 0, err
	}
	if _, err := fmt.Sscan(count, &commits); err != nil {
		return nil, 0, fmt.Errorf("count commits since %s: %w", rel.Commit, err)
	}
	return slices.Compact(files), commits, nil
}
