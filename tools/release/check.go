package main

import (
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
	// tools are gorelease and multimod.
	tools tools
	// compileOnly names the module directories whose tests are compiled and
	// vetted but not run.
	compileOnly map[string]bool
	out         io.Writer
}

// goEnv is the environment of every go command of the check: no workspace,
// our modules only from the proxy (GONOSUMDB, as the checksum database
// cannot know them), everything else from what the check fetched already,
// the machine's module cache or the usual proxy, and a module cache of the
// check's own so that no copy of our modules from an earlier run is used.
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
		"GOPROXY=file://"+filepath.ToSlash(c.proxy)+",file://"+filepath.ToSlash(filepath.Join(c.work, "modcache", "cache", "download"))+","+c.upstream,
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
	step("versions.yaml names every module (multimod verify), go.work in step, changelogs", func() []string {
		fs := c.verifyModuleSets(ctx)
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
				vs = append(vs, rel.Version+" from "+rel.where())
			}
			fmt.Fprintf(c.out, "   %s: %s\n", c.mods[p].Dir, strings.Join(vs, ", "))
		}
		return nil
	})
	step("API of every lib against its released versions (gorelease)", func() []string {
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

// verifyModuleSets runs multimod verify: versions.yaml names every module
// of the repository once, in a module set or excluded, and no module the
// repository lacks, each set at a valid version.
func (c *checker) verifyModuleSets(ctx context.Context) []string {
	if out, err := runIn(ctx, c.repo.root, nil, c.tools.multimod, "verify"); err != nil {
		return []string{fmt.Sprintf("multimod verify: %v\n%s", err, indent(out))}
	}
	return nil
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
