package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// ourRequirements returns the requirements of m's go.mod on modules of this
// repository.
func (c *checker) ourRequirements(m repoModule) []module.Version {
	data, err := os.ReadFile(filepath.Join(c.repo.root, filepath.FromSlash(m.Dir), "go.mod"))
	if err != nil {
		return nil
	}
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return nil
	}
	var req []module.Version
	for _, r := range f.Require {
		if _, ok := c.mods[r.Mod.Path]; ok {
			req = append(req, r.Mod)
		}
	}
	return req
}

// checkConsumer builds, vets and tests module m (vets only when it is
// compile-only) outside the workspace against the versions of our modules
// its go.mod requires, served by the proxy. go.mod and go.sum are used
// through copies (-modfile), so the work tree is left as it is.
func (c *checker) checkConsumer(ctx context.Context, m repoModule) []string {
	dir := filepath.Join(c.repo.root, filepath.FromSlash(m.Dir))
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return []string{err.Error()}
	}
	if fs := c.checkRequirements(m, data); len(fs) > 0 {
		for _, x := range fs {
			fmt.Fprintf(c.out, "   FAIL %s\n", x)
		}
		return fs
	}
	tmp := filepath.Join(c.work, "modfiles", strings.ReplaceAll(m.Dir, "/", "_"))
	modFile, err := copyModFiles(dir, tmp)
	if err != nil {
		return []string{err.Error()}
	}
	cmds, err := c.consumerCommands(ctx, m, dir, modFile)
	if err != nil {
		return []string{err.Error()}
	}
	for _, args := range cmds {
		fmt.Fprintf(c.out, "   $ go %s   (in %s)\n", strings.Join(args, " "), m.Dir)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = c.goEnv()
		var buf bytes.Buffer
		cmd.Stdout = io.MultiWriter(c.out, &buf)
		cmd.Stderr = cmd.Stdout
		if err := cmd.Run(); err != nil {
			return []string{fmt.Sprintf("%s: go %s outside the workspace: %v\n%s", m.Dir, args[0], err, indent(lastLines(buf.String(), 20)))}
		}
	}
	after, err := os.ReadFile(modFile)
	if err != nil {
		return []string{err.Error()}
	}
	if d := requireDiff(data, after); d != "" {
		return []string{fmt.Sprintf("%s/go.mod is not what the released versions it requires need; outside the workspace go changes it:\n%s", m.Dir, indent(d))}
	}
	return nil
}

// checkRequirements checks what the go.mod of m (data) says of our
// modules: no replace, and only versions versions.yaml has named.
func (c *checker) checkRequirements(m repoModule, data []byte) []string {
	f, err := modfile.Parse(m.Dir+"/go.mod", data, nil)
	if err != nil {
		return []string{err.Error()}
	}
	var fs []string
	for _, r := range f.Replace {
		if _, ok := c.mods[r.Old.Path]; ok {
			fs = append(fs, fmt.Sprintf("%s/go.mod replaces %s: the build must use the released version (scripts/tidy.sh adds replaces only while it runs)", m.Dir, r.Old.Path))
		}
	}
	for _, r := range c.ourRequirements(m) {
		if _, ok := c.vers.version[r.Path]; !ok {
			fs = append(fs, fmt.Sprintf("%s requires %s %s, a module versions.yaml does not release", m.Dir, r.Path, r.Version))
			continue
		}
		var known []string
		for _, rel := range c.hist[r.Path] {
			known = append(known, rel.Version)
		}
		if !slices.Contains(known, r.Version) {
			fs = append(fs, fmt.Sprintf("%s requires %s %s, a version versions.yaml never named (released: %s)", m.Dir, c.mods[r.Path].Dir, r.Version, strings.Join(known, ", ")))
			continue
		}
		fmt.Fprintf(c.out, "   requires %s %s\n", c.mods[r.Path].Dir, r.Version)
	}
	return fs
}

// copyModFiles copies go.mod and go.sum of the module in dir into tmp and
// returns the copy of go.mod.
func copyModFiles(dir, tmp string) (string, error) {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	for _, name := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && name == "go.sum" {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(tmp, "go.mod"), nil
}

// consumerCommands are the go commands that check module m: build, then
// test (or vet, when m is compile-only), through the go.mod copy modFile.
func (c *checker) consumerCommands(ctx context.Context, m repoModule, dir, modFile string) ([][]string, error) {
	// -trimpath: the build cache keys then do not hold the directory of
	// the check's own module cache, which changes with every run.
	flags := []string{"-mod=mod", "-modfile=" + modFile, "-trimpath"}
	mains, err := c.goOutput(ctx, dir, append(append([]string{"list", "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`}, flags...), "./..."))
	if err != nil {
		return nil, fmt.Errorf("%s: go list outside the workspace: %w", m.Dir, err)
	}
	build := []string{"build"}
	if len(lines(mains)) > 0 {
		// Into a directory of the check's: `go build ./...` of a module with
		// one main package would leave the binary in the work tree.
		build = append(build, "-o", filepath.Join(filepath.Dir(modFile), "bin")+string(filepath.Separator))
	}
	cmds := [][]string{append(append(build, flags...), "./...")}
	if c.compileOnly[m.Dir] {
		return append(cmds, append(append([]string{"vet"}, flags...), "./...")), nil
	}
	return append(cmds, append(append([]string{"test", "-count=1"}, flags...), "./...")), nil
}

// goOutput runs go in dir with the check's environment and returns its
// standard output.
func (c *checker) goOutput(ctx context.Context, dir string, args []string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = c.goEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, indent(lastLines(stderr.String(), 20)))
	}
	return stdout.String(), nil
}

// requireDiff describes how the requirements of two go.mod files differ,
// or returns "" when they are the same.
func requireDiff(before, after []byte) string {
	reqs := func(data []byte) map[string]string {
		f, err := modfile.ParseLax("go.mod", data, nil)
		out := map[string]string{}
		if err != nil {
			return out
		}
		for _, r := range f.Require {
			out[r.Mod.Path] = r.Mod.Version
		}
		return out
	}
	b, a := reqs(before), reqs(after)
	var d []string
	for _, p := range sortedKeys(b) {
		if a[p] != b[p] {
			d = append(d, fmt.Sprintf("%s %s -> %s", p, b[p], or(a[p], "(dropped)")))
		}
	}
	for _, p := range sortedKeys(a) {
		if _, ok := b[p]; !ok {
			d = append(d, fmt.Sprintf("%s (added) %s", p, a[p]))
		}
	}
	return strings.Join(d, "\n")
}
