package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// state is what the tooling derives from the repository: its modules,
// versions.yaml, and the release history read from versions.yaml's history.
type state struct {
	repo     repo
	mods     map[string]repoModule
	vers     versions
	hist     map[string][]release
	warnings []string
}

// loadState reads the repository at root.
func loadState(ctx context.Context, root string) (*state, error) {
	r, err := findRepo(ctx, root)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(r.root, "versions.yaml"))
	if err != nil {
		return nil, err
	}
	vers, err := parseVersions(data)
	if err != nil {
		return nil, err
	}
	mods, err := r.modules(ctx)
	if err != nil {
		return nil, err
	}
	hist, warnings, err := r.history(ctx, vers)
	if err != nil {
		return nil, err
	}
	return &state{repo: r, mods: mods, vers: vers, hist: hist, warnings: warnings}, nil
}

// checker runs release-check.
type checker struct {
	*state
	// work is a temporary directory: the proxy, a module cache of its own,
	// unpacked snapshots.
	work string
	// proxy is the file-based module proxy's directory.
	proxy string
	// upstream is where modules that are not ours come from, in GOPROXY
	// form: the machine's module cache first, then the usual GOPROXY.
	upstream string
	// compileOnly names the module directories whose tests are compiled and
	// vetted but not run.
	compileOnly map[string]bool
	out         io.Writer
}

// goEnv is the environment of every go command of the check: no workspace,
// our modules only from the proxy (GONOSUMDB, as the checksum database
// cannot know them), everything else from the machine's module cache or
// the usual proxy, and a module cache of the check's own so that no copy
// of our modules from an earlier run is used.
func (c *checker) goEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOWORK", "GOPROXY", "GOMODCACHE", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOFLAGS":
			continue
		}
		env = append(env, kv)
	}
	ours := strings.Join(sortedKeys(c.mods), ",")
	return append(env,
		"GOWORK=off",
		"GOPROXY=file://"+filepath.ToSlash(c.proxy)+","+c.upstream,
		"GOMODCACHE="+filepath.Join(c.work, "modcache"),
		"GONOSUMDB="+ours,
		"GOPRIVATE=",
		"GONOPROXY=",
		"GOFLAGS=-buildvcs=false",
	)
}

// upstreamProxy is the GOPROXY list behind ours: the machine's module cache
// as a file proxy (fast, offline), then the user's GOPROXY.
func upstreamProxy(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE", "GOPROXY").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	l := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(l) != 2 {
		return "", fmt.Errorf("go env: unexpected output %q", out)
	}
	up := l[1]
	if up == "" {
		up = "https://proxy.golang.org,direct"
	}
	if cache := filepath.Join(l[0], "cache", "download"); l[0] != "" {
		if _, err := os.Stat(cache); err == nil {
			up = "file://" + filepath.ToSlash(cache) + "," + up
		}
	}
	return up, nil
}

// run checks everything and returns the failures.
func (c *checker) run(ctx context.Context) []string {
	var failures []string
	step := func(name string, f func() []string) {
		start := time.Now()
		fmt.Fprintf(c.out, "== %s\n", name)
		fs := f()
		failures = append(failures, fs...)
		fmt.Fprintf(c.out, "   %s: %d failures, %s\n", name, len(fs), time.Since(start).Round(100*time.Millisecond))
	}
	for _, w := range c.warnings {
		fmt.Fprintf(c.out, "warning: versions.yaml history: %s\n", w)
	}
	step("versions.yaml names every module, go.work in step, changelogs", func() []string {
		fs := c.checkCoverage(ctx)
		fs = append(fs, c.checkChangelogs()...)
		_, drift, err := syncWork(c.state, false)
		if err != nil {
			return append(fs, err.Error())
		}
		for _, d := range drift {
			fs = append(fs, "go.work: "+d+" (run: GOWORK=off go -C tools/release run . sync)")
		}
		return fs
	})
	step("module proxy "+c.proxy, func() []string {
		if err := buildProxy(ctx, c.repo, c.mods, c.vers, c.hist, c.proxy); err != nil {
			return []string{err.Error()}
		}
		for _, p := range c.vers.released() {
			var vs []string
			for _, rel := range c.hist[p] {
				vs = append(vs, rel.Version+" ("+label(rel.Commit)+")")
			}
			fmt.Fprintf(c.out, "   %s: %s\n", c.mods[p].Dir, strings.Join(vs, ", "))
		}
		return nil
	})
	step("API of every lib against its released versions", func() []string {
		var fs []string
		for _, p := range c.vers.released() {
			m, ok := c.mods[p]
			if !ok || !strings.HasPrefix(m.Dir, "libs/") {
				continue
			}
			f, notes := c.checkAPI(ctx, m)
			for _, n := range notes {
				fmt.Fprintf(c.out, "   %s\n", strings.TrimRight(n, "\n"))
			}
			for _, x := range f {
				fmt.Fprintf(c.out, "   FAIL %s\n", strings.TrimRight(x, "\n"))
			}
			fs = append(fs, f...)
		}
		return fs
	})
	for _, m := range sortedModules(c.mods) {
		if _, ok := c.vers.version[m.Path]; !ok {
			continue
		}
		if req := c.ourRequirements(m); len(req) == 0 {
			continue
		}
		step(m.Dir+" against the versions its go.mod requires, GOWORK=off", func() []string {
			return c.checkConsumer(ctx, m)
		})
	}
	return failures
}

// checkCoverage checks that versions.yaml names every module of the
// repository, released or excluded, and no module the repository lacks,
// and that every directory go.work uses holds a module.
func (c *checker) checkCoverage(ctx context.Context) []string {
	var fs []string
	for _, p := range sortedKeys(c.mods) {
		if _, ok := c.vers.version[p]; !ok && !c.vers.excluded[p] {
			fs = append(fs, fmt.Sprintf("versions.yaml: %s (%s) is in no module set and not excluded", p, c.mods[p].Dir))
		}
	}
	for _, p := range append(c.vers.released(), sortedKeys(c.vers.excluded)...) {
		if _, ok := c.mods[p]; !ok {
			fs = append(fs, fmt.Sprintf("versions.yaml: names %s, which no go.mod of the repository declares", p))
		}
	}
	wf, err := readWork(c.repo.root)
	if err != nil || wf == nil {
		if err != nil {
			fs = append(fs, err.Error())
		}
		return fs
	}
	for _, u := range wf.Use {
		dir := filepath.ToSlash(filepath.Clean(u.Path))
		if !slices.ContainsFunc(sortedModules(c.mods), func(m repoModule) bool { return m.Dir == dir }) {
			fs = append(fs, fmt.Sprintf("go.work uses %s, which holds no module", dir))
		}
	}
	return fs
}

// changelogVersion finds a version's heading in a changelog: "## [0.1.0]",
// "## [v0.1.0] - 2026-11-26", "## 0.1.0".
func changelogVersion(version string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^## \[?v?` + regexp.QuoteMeta(strings.TrimPrefix(version, "v")) + `\]?(\s|$)`)
}

// unreleasedHeading is the heading of a changelog's Unreleased section.
var unreleasedHeading = regexp.MustCompile(`(?m)^## \[Unreleased\]`)

// checkChangelogs checks that every released module has a CHANGELOG.md
// with an Unreleased section and a section for its current version.
func (c *checker) checkChangelogs() []string {
	var fs []string
	for _, p := range c.vers.released() {
		m, ok := c.mods[p]
		if !ok {
			continue
		}
		file := pathInRepo(m.Dir, "CHANGELOG.md")
		data, err := os.ReadFile(filepath.Join(c.repo.root, filepath.FromSlash(file)))
		if err != nil {
			fs = append(fs, fmt.Sprintf("%s: %v", file, err))
			continue
		}
		if !unreleasedHeading.Match(data) {
			fs = append(fs, fmt.Sprintf("%s: no \"## [Unreleased]\" section", file))
		}
		if v := c.vers.version[p]; !changelogVersion(v).Match(data) {
			fs = append(fs, fmt.Sprintf("%s: no section for %s, the version versions.yaml names (\"## [%s] - YYYY-MM-DD\")", file, v, strings.TrimPrefix(v, "v")))
		}
	}
	return fs
}

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
		found := false
		for _, rel := range c.hist[r.Path] {
			known = append(known, rel.Version)
			found = found || rel.Version == r.Version
		}
		if !found {
			fs = append(fs, fmt.Sprintf("%s requires %s %s, a version versions.yaml never named (released: %s)", m.Dir, c.mods[r.Path].Dir, r.Version, strings.Join(known, ", ")))
		} else {
			fmt.Fprintf(c.out, "   requires %s %s\n", c.mods[r.Path].Dir, r.Version)
		}
	}
	if len(fs) > 0 {
		for _, x := range fs {
			fmt.Fprintf(c.out, "   FAIL %s\n", x)
		}
		return fs
	}

	tmp := filepath.Join(c.work, "modfiles", strings.ReplaceAll(m.Dir, "/", "_"))
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return []string{err.Error()}
	}
	modFile := filepath.Join(tmp, "go.mod")
	if err := os.WriteFile(modFile, data, 0o644); err != nil {
		return []string{err.Error()}
	}
	if sum, err := os.ReadFile(filepath.Join(dir, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(tmp, "go.sum"), sum, 0o644); err != nil {
			return []string{err.Error()}
		}
	}
	// -trimpath: the build cache keys then do not hold the directory of
	// the check's own module cache, which changes with every run.
	flags := []string{"-mod=mod", "-modfile=" + modFile, "-trimpath"}
	mains, err := c.goOutput(ctx, dir, append(append([]string{"list", "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`}, flags...), "./..."))
	if err != nil {
		return []string{fmt.Sprintf("%s: go list outside the workspace: %v", m.Dir, err)}
	}
	build := []string{"build"}
	if len(lines(mains)) > 0 {
		// Into a directory of the check's: `go build ./...` of a module with
		// one main package would leave the binary in the work tree.
		build = append(build, "-o", filepath.Join(tmp, "bin")+string(filepath.Separator))
	}
	cmds := [][]string{append(append(build, flags...), "./...")}
	if c.compileOnly[m.Dir] {
		cmds = append(cmds, append(append([]string{"vet"}, flags...), "./..."))
	} else {
		cmds = append(cmds, append(append([]string{"test", "-count=1"}, flags...), "./..."))
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

// or returns s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lastLines keeps the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// indent indents every line of s for a failure message.
func indent(s string) string {
	l := strings.Split(s, "\n")
	for i := range l {
		l[i] = "      " + l[i]
	}
	return strings.Join(l, "\n")
}

// compileOnlyDirs parses the -compile-only flag.
func compileOnlyDirs(s string) map[string]bool {
	out := map[string]bool{}
	for d := range strings.SplitSeq(s, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out[d] = true
		}
	}
	return out
}

// sortedModules returns the modules ordered by directory.
func sortedModules(mods map[string]repoModule) []repoModule {
	out := make([]repoModule, 0, len(mods))
	for _, m := range mods {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b repoModule) int { return strings.Compare(a.Dir, b.Dir) })
	return out
}
