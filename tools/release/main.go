// Command release is the release tooling of the repository's modules. It
// derives everything from versions.yaml and the git history, never from
// tags, which may not travel with a clone.
//
//	release versions [-v]     each module, its version, the commit that released
//	                          it, and whether it changed since
//	release check             release-check: go.work and changelogs in step with
//	                          versions.yaml; a module proxy built from the history;
//	                          every lib's API against its versions; every module
//	                          that requires our libs built and tested with
//	                          GOWORK=off against exactly the versions it requires
//	release proxy -o DIR      only build the module proxy, for GOPROXY=file://DIR
//	release sync              write go.work's replace directives from versions.yaml
//
// A module's version is released by the commit that sets it in
// versions.yaml; see the README's "Releasing a module". What well-kept
// tools do, they do: multimod (go.opentelemetry.io/build-tools) checks
// versions.yaml and makes the tags, gorelease (golang.org/x/exp) compares
// the libs' APIs; both are tool directives of this module.
//
// Run it in its own directory (it is a module of its own, outside go.work,
// and check builds its tools there); -repo names the repository, the
// working directory's by default: GOWORK=off go -C tools/release run . check
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// errUsage reports a command line the tool does not understand.
var errUsage = errors.New("usage: release [-repo DIR] versions [-v] | check [-keep] [-compile-only DIRS] | proxy -o DIR | sync")

// run runs the command line args, writing its report to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	top := flag.NewFlagSet("release", flag.ContinueOnError)
	top.SetOutput(out)
	root := top.String("repo", ".", "a directory inside the repository")
	if err := top.Parse(args); err != nil {
		return err
	}
	if top.NArg() == 0 {
		return errUsage
	}
	cmd, rest := top.Arg(0), top.Args()[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	switch cmd {
	case "versions":
		verbose := fs.Bool("v", false, "list the files changed since each release")
		return withState(ctx, fs, rest, *root, func(st *state) error { return printVersions(ctx, st, out, *verbose) })
	case "check":
		keep := fs.Bool("keep", false, "keep the proxy and the module cache, and print where")
		compileOnly := fs.String("compile-only", "tests/e2e", "comma-separated module directories whose tests are compiled and vetted, not run")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		return check(ctx, *root, out, *keep, compileOnlyDirs(*compileOnly))
	case "proxy":
		dir := fs.String("o", "", "the directory to write the proxy to")
		return withState(ctx, fs, rest, *root, func(st *state) error { return writeProxy(ctx, st, *dir, out) })
	case "sync":
		return withState(ctx, fs, rest, *root, func(st *state) error { return runSync(st, out) })
	default:
		return errUsage
	}
}

// withState parses a command's flags, reads the repository at root and
// runs the command f with it.
func withState(ctx context.Context, fs *flag.FlagSet, args []string, root string, f func(*state) error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := loadState(ctx, root)
	if err != nil {
		return err
	}
	return f(st)
}

// writeProxy writes the module proxy into dir and says how to use it.
func writeProxy(ctx context.Context, st *state, dir string, out io.Writer) error {
	if dir == "" {
		return errUsage
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := buildProxy(ctx, st.repo, st.mods, st.vers, st.hist, abs); err != nil {
		return err
	}
	fmt.Fprintf(out, "GOPROXY=file://%s\n", filepath.ToSlash(abs))
	return nil
}

// runSync writes go.work's replace directives and says what it fixed.
func runSync(st *state, out io.Writer) error {
	_, drift, err := syncWork(st, true)
	if err != nil {
		return err
	}
	for _, d := range drift {
		fmt.Fprintf(out, "go.work: fixed: %s\n", d)
	}
	if len(drift) == 0 {
		fmt.Fprintln(out, "go.work is in step with versions.yaml")
	}
	return nil
}

// check runs release-check and fails when any of its checks fails. It
// finds gorelease and multimod in the module of the working directory,
// this tool's own.
func check(ctx context.Context, root string, out io.Writer, keep bool, compileOnly map[string]bool) error {
	start := time.Now()
	st, err := loadState(ctx, root)
	if err != nil {
		return err
	}
	up, err := upstreamProxy(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "release-check-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(out, "work directory (kept): %s\n", work)
	} else {
		defer func() {
			if err := removeAll(work); err != nil {
				fmt.Fprintf(out, "warning: work directory left behind: %v\n", err)
			}
		}()
	}
	tools, err := findTools(ctx, ".", filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	c := &checker{state: st, work: work, proxy: filepath.Join(work, "proxy"), upstream: up, tools: tools, compileOnly: compileOnly, out: out}
	failures := c.run(ctx)
	fmt.Fprintf(out, "== release-check: %d failures in %s\n", len(failures), time.Since(start).Round(100*time.Millisecond))
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintf(out, "FAIL %s\n", f)
		}
		return fmt.Errorf("release-check failed: %d failures", len(failures))
	}
	return nil
}

// printVersions prints each module, its version, the commit that released
// it, and whether its files changed since.
func printVersions(ctx context.Context, st *state, out io.Writer, verbose bool) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tVERSION\tRELEASED BY\tSINCE THEN")
	var details []string
	for _, m := range sortedModules(st.mods) {
		v, ok := st.vers.version[m.Path]
		if !ok {
			what := "not in versions.yaml"
			if st.vers.excluded[m.Path] {
				what = "excluded from releases"
			}
			fmt.Fprintf(tw, "%s\t-\t-\t%s\n", m.Dir, what)
			continue
		}
		rel, _ := currentRelease(st.hist[m.Path], v)
		if rel.Commit == "" {
			fmt.Fprintf(tw, "%s\t%s\tthe work tree\trelease being prepared: commit versions.yaml\n", m.Dir, v)
			continue
		}
		files, commits, err := st.repo.changes(ctx, m, st.mods, rel)
		if err != nil {
			return err
		}
		since := "no changes"
		if len(files) > 0 {
			since = fmt.Sprintf("unreleased changes: %d files, %d commits", len(files), commits)
			if verbose {
				details = append(details, fmt.Sprintf("%s since %s:\n  %s", m.Dir, v, strings.Join(files, "\n  ")))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\n", m.Dir, v, rel.Commit[:12], rel.Time.UTC().Format("2006-01-02"), since)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range details {
		fmt.Fprintf(out, "\n%s\n", d)
	}
	for _, w := range st.warnings {
		fmt.Fprintf(out, "warning: versions.yaml history: %s\n", w)
	}
	return nil
}
