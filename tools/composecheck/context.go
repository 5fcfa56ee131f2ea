package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ignoreMatcher reads dir/.dockerignore; no file means nothing is ignored.
func ignoreMatcher(dir string) (*patternmatcher.PatternMatcher, error) {
	name := filepath.Join(dir, ".dockerignore")
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return patternmatcher.New(nil)
	}
	if err != nil {
		return nil, err
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return patternmatcher.New(patterns)
}

// graft is a directory placed into a build context at a path of its own,
// standing for what a build step (such as `make images-proxy`) writes there
// before the image is built.
type graft struct {
	at  string // slash-separated path in the context
	dir string // the directory whose contents go there
}

// parseGraft parses PATH=DIR.
func parseGraft(s string) (graft, error) {
	at, dir, ok := strings.Cut(s, "=")
	at = strings.Trim(path.Clean("/"+filepath.ToSlash(at)), "/")
	if !ok || at == "" || dir == "" {
		return graft{}, fmt.Errorf("%w: -add PATH=DIR, PATH inside the context: %q", errUsage, s)
	}
	return graft{at: at, dir: dir}, nil
}

// copyContext copies the build context src to dst as a build sees it:
// without what src/.dockerignore excludes. Each graft's directory is
// copied to its path instead of what src holds there, and filtered by the
// same .dockerignore. It returns the number of files copied.
func copyContext(src, dst string, grafts ...graft) (int, error) {
	pm, err := ignoreMatcher(src)
	if err != nil {
		return 0, err
	}
	n := 0
	// parents remembers each directory's match so children are matched the
	// way the Docker client does.
	parents := map[string]patternmatcher.MatchInfo{}
	grafted := map[string]bool{}
	for _, g := range grafts {
		grafted[g.at] = true
	}
	if err := copyFiltered(pm, parents, src, "", dst, grafted, &n); err != nil {
		return n, err
	}
	for _, g := range grafts {
		// Match the graft's parent directories first, as a walk would.
		var dir string
		for _, part := range strings.Split(path.Dir(g.at), "/") {
			if part == "." {
				break
			}
			rel := path.Join(dir, part)
			if _, ok := parents[rel]; !ok {
				_, info, err := pm.MatchesUsingParentResults(rel, parents[dir])
				if err != nil {
					return n, err
				}
				parents[rel] = info
			}
			dir = rel
		}
		if err := copyFiltered(pm, parents, g.dir, g.at, dst, nil, &n); err != nil {
			return n, fmt.Errorf("-add %s=%s: %w", g.at, g.dir, err)
		}
	}
	return n, nil
}

// copyFiltered copies the tree src to dst/prefix, leaving out what pm
// excludes (paths matched relative to dst) and the paths in skip, and
// counts the files copied in n.
func copyFiltered(pm *patternmatcher.PatternMatcher, parents map[string]patternmatcher.MatchInfo, src, prefix, dst string, skip map[string]bool, n *int) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = path.Join(prefix, filepath.ToSlash(rel))
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if skip[rel] {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		parent := path.Dir(rel)
		if parent == "." {
			parent = ""
		}
		excluded, info, err := pm.MatchesUsingParentResults(rel, parents[parent])
		if err != nil {
			return err
		}
		if e.IsDir() {
			parents[rel] = info
			if excluded {
				// As the Docker client does: an excluded directory is
				// left out, and walked only when an exception (!pattern)
				// may take back something inside it.
				if mayInclude(pm, rel) {
					return nil
				}
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, filepath.FromSlash(rel)), 0o755)
		}
		if excluded {
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		*n++
		return copyEntry(p, target, e)
	})
}

// mayInclude reports whether an exception of pm (a !pattern) may match
// something inside the excluded directory dir.
func mayInclude(pm *patternmatcher.PatternMatcher, dir string) bool {
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(filepath.ToSlash(p.String())+"/", dir+"/") {
			return true
		}
	}
	return false
}

// copyTree copies the file or directory src to dst, merging into what dst
// already holds, and returns the number of files copied.
func copyTree(src, dst string) (int, error) {
	n := 0
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		n++
		return copyEntry(path, target, e)
	})
	return n, err
}

func copyEntry(src, dst string, e fs.DirEntry) error {
	if e.Type()&fs.ModeSymlink != 0 {
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(link, dst)
	}
	if !e.Type().IsRegular() {
		return nil // sockets, devices: not build input
	}
	info, err := e.Info()
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close() //nolint:errcheck // read only: Close loses nothing
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy's error is the one to report
		return err
	}
	return out.Close()
}

func runContext(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("context", flag.ContinueOnError)
	out := fs.String("o", "", "copy the context into this directory (must not exist or be empty)")
	var grafts []graft
	fs.Func("add", "PATH=DIR: put DIR's contents at PATH in the context, in place of what SRC holds there, filtered by the same .dockerignore (repeatable)", func(s string) error {
		g, err := parseGraft(s)
		grafts = append(grafts, g)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	src := "."
	if fs.NArg() == 1 {
		src = fs.Arg(0)
	}
	if *out == "" || fs.NArg() > 1 {
		return fmt.Errorf("%w: context -o DIR [-add PATH=DIR]... [SRC]", errUsage)
	}
	if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
		return fmt.Errorf("context: %s is not empty", *out)
	}
	n, err := copyContext(src, *out, grafts...)
	if err != nil {
		return fmt.Errorf("context: %w", err)
	}
	fmt.Fprintf(stdout, "build context of %s: %d files (after .dockerignore) in %s\n", src, n, *out)
	return nil
}
