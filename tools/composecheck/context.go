package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ignoreMatcher reads dir/.dockerignore; no file means nothing is ignored.
func ignoreMatcher(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return patternmatcher.New(nil)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return patternmatcher.New(patterns)
}

// copyContext copies the build context src to dst as a build sees it:
// without what src/.dockerignore excludes. It returns the number of files
// copied.
func copyContext(src, dst string) (int, error) {
	pm, err := ignoreMatcher(src)
	if err != nil {
		return 0, err
	}
	n := 0
	// parents remembers each directory's match so children are matched the
	// way the Docker client does.
	parents := map[string]patternmatcher.MatchInfo{}
	err = filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		rel = filepath.ToSlash(rel)
		excluded, info, err := pm.MatchesUsingParentResults(rel, parents[filepath.ToSlash(filepath.Dir(rel))])
		if err != nil {
			return err
		}
		if e.IsDir() {
			parents[rel] = info
			if excluded && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if excluded {
			return nil
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		n++
		return copyEntry(path, target, e)
	})
	return n, err
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
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func runContext(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("context", flag.ContinueOnError)
	out := fs.String("o", "", "copy the context into this directory (must not exist or be empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	src := "."
	if fs.NArg() == 1 {
		src = fs.Arg(0)
	}
	if *out == "" || fs.NArg() > 1 {
		return fmt.Errorf("%w: context -o DIR [SRC]", errUsage)
	}
	if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
		return fmt.Errorf("context: %s is not empty", *out)
	}
	n, err := copyContext(src, *out)
	if err != nil {
		return fmt.Errorf("context: %w", err)
	}
	fmt.Fprintf(stdout, "build context of %s: %d files (after .dockerignore) in %s\n", src, n, *out)
	return nil
}
