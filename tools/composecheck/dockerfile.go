package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	path     string
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	warnings []string // the parser's and the linter's
}

// parseDockerfile parses path with BuildKit's parser and its linter, the
// checks `docker build --check` runs.
func parseDockerfile(path string) (*dockerfile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := &dockerfile{path: path}
	for _, w := range res.Warnings {
		d.warnings = append(d.warnings, fmt.Sprintf("%s:%d: %s", path, w.Location.Start.Line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, url, msg string, loc []parser.Range) {
		d.warnings = append(d.warnings, fmt.Sprintf("%s:%d: %s: %s (%s)", path, line(loc), rule, msg, url))
	}})
	d.stages, d.metaArgs, err = instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", path)
	}
	return d, nil
}

func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// final returns the stage the image is made of.
func (d *dockerfile) final() instructions.Stage { return d.stages[len(d.stages)-1] }

// healthcheck returns the final stage's HEALTHCHECK, nil when there is none
// or it is NONE.
func (d *dockerfile) healthcheck() *instructions.HealthCheckCommand {
	var hc *instructions.HealthCheckCommand
	for _, c := range d.final().Commands {
		if h, ok := c.(*instructions.HealthCheckCommand); ok {
			hc = h // the last one counts
		}
	}
	if hc == nil || len(hc.Health.Test) == 0 || hc.Health.Test[0] == "NONE" {
		return nil
	}
	return hc
}

// check reports what is wrong with the Dockerfile built in contextDir.
func (d *dockerfile) check(contextDir string) error {
	var p problems
	for _, w := range d.warnings {
		p.add("%s", w)
	}

	final := d.final()
	var user *instructions.UserCommand
	var entry *instructions.EntrypointCommand
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c
		case *instructions.EntrypointCommand:
			entry = c
		case *instructions.RunCommand:
			if strings.Contains(final.BaseName, "distroless") {
				p.add("%s:%d: RUN in a stage on %s, which has no shell", d.path, line(c.Location()), final.BaseName)
			}
		}
	}
	if user == nil {
		p.add("%s: the final stage sets no USER: the container would run as the base image's user", d.path)
	} else if u, _, _ := strings.Cut(user.User, ":"); u == "root" || u == "0" {
		p.add("%s:%d: the final stage runs as root", d.path, line(user.Location()))
	}
	if entry == nil {
		p.add("%s: the final stage has no ENTRYPOINT", d.path)
	} else if entry.PrependShell {
		p.add("%s:%d: ENTRYPOINT in shell form needs a shell and hides signals from the binary; use [\"/bin\", ...]", d.path, line(entry.Location()))
	}
	if hc := d.healthcheck(); hc == nil {
		p.add("%s: the final stage has no HEALTHCHECK", d.path)
	} else if hc.Health.Test[0] != "CMD" {
		p.add("%s:%d: HEALTHCHECK %s needs a shell; use the exec form CMD [\"/bin\", \"healthcheck\"]", d.path, line(hc.Location()), hc.Health.Test[0])
	}

	for _, st := range d.stages {
		for _, c := range st.Commands {
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From != "" {
				continue
			}
			for _, src := range cp.SourcePaths {
				matches, err := filepath.Glob(filepath.Join(contextDir, filepath.FromSlash(src)))
				if err != nil || len(matches) == 0 {
					p.add("%s:%d: COPY %s: nothing in the build context matches (is it in .dockerignore?)", d.path, line(cp.Location()), src)
				}
			}
		}
	}
	if _, _, err := d.goBuild(); err != nil {
		p.add("%s: %w", d.path, err)
	}
	return p.err()
}

// goBuild returns the stage and the RUN that runs `go build`.
func (d *dockerfile) goBuild() (instructions.Stage, *instructions.RunCommand, error) {
	var found []*instructions.RunCommand
	var stage instructions.Stage
	for _, st := range d.stages {
		for _, c := range st.Commands {
			if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
				found = append(found, r)
				stage = st
			}
		}
	}
	switch {
	case len(found) == 0:
		return stage, nil, fmt.Errorf("no RUN runs go build")
	case len(found) > 1:
		return stage, nil, fmt.Errorf("%d RUNs run go build; keep one, so that the check runs what the image runs", len(found))
	case !found[0].PrependShell:
		return stage, nil, fmt.Errorf("the go build RUN is in exec form; write it as a shell command")
	}
	return stage, found[0], nil
}

// materialize lays out in root, standing for the build stage's "/", what
// the stage's COPY instructions put there before its go build runs, taking
// the sources from contextDir, and returns the stage's working directory
// then (a path under root). Only what the build stage needs is supported:
// WORKDIR and COPY from the context.
func (d *dockerfile) materialize(contextDir, root string) (string, error) {
	stage, run, err := d.goBuild()
	if err != nil {
		return "", err
	}
	workdir := "/"
	for _, c := range stage.Commands {
		if c == instructions.Command(run) {
			break
		}
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			workdir = resolveIn(workdir, c.Path)
		case *instructions.CopyCommand:
			if c.From != "" || c.Parents || len(c.ExcludePatterns) > 0 || len(c.SourceContents) > 0 {
				return "", fmt.Errorf("%s:%d: composecheck cannot replay this COPY (--from, --parents, --exclude or a heredoc)", d.path, line(c.Location()))
			}
			if err := replayCopy(contextDir, root, workdir, c.SourcePaths, c.DestPath); err != nil {
				return "", fmt.Errorf("%s:%d: %w", d.path, line(c.Location()), err)
			}
		case *instructions.AddCommand:
			return "", fmt.Errorf("%s:%d: composecheck cannot replay ADD; use COPY", d.path, line(c.Location()))
		}
	}
	dir := filepath.Join(root, filepath.FromSlash(workdir))
	return dir, os.MkdirAll(dir, 0o755)
}

// resolveIn resolves p against the directory dir, as WORKDIR and COPY's
// destination do.
func resolveIn(dir, p string) string {
	if !strings.HasPrefix(p, "/") {
		p = dir + "/" + p
	}
	clean := filepath.ToSlash(filepath.Clean(p))
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// replayCopy does what COPY srcs... dest does: a directory's contents go
// into dest; files go into dest when it ends with "/" or there are
// several sources, else become dest.
func replayCopy(contextDir, root, workdir string, srcs []string, dest string) error {
	target := resolveIn(workdir, dest)
	var matches []string
	for _, src := range srcs {
		m, err := filepath.Glob(filepath.Join(contextDir, filepath.FromSlash(src)))
		if err != nil {
			return err
		}
		matches = append(matches, m...)
	}
	intoDir := strings.HasSuffix(target, "/") || len(matches) > 1 || dest == "." || dest == "./"
	for _, m := range matches {
		info, err := os.Stat(m)
		if err != nil {
			return err
		}
		to := filepath.Join(root, filepath.FromSlash(target))
		if !info.IsDir() && intoDir {
			to = filepath.Join(to, filepath.Base(m))
		}
		if _, err := copyTree(m, to); err != nil {
			return err
		}
	}
	return nil
}

// goBuildScript writes a sh script that runs the Dockerfile's go build line
// as written, in workdir (or where the script is run when workdir is
// empty), with the stage's ENV and ARG defaults (an ARG already in the
// environment wins, as --build-arg does) and /out/ replaced by outDir.
// When stageRoot is not empty it is the directory standing for the stage's
// "/" (see materialize), and GOPROXY's file:// entries, which name
// directories of the stage, are moved under it.
func (d *dockerfile) goBuildScript(w io.Writer, stageRoot, workdir, outDir string) error {
	stage, run, err := d.goBuild()
	if err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# The go build of %s (generated by composecheck).\nset -eu\n", d.path)
	if workdir != "" {
		fmt.Fprintf(&b, "cd %s\n", shellQuote(workdir))
	}
	for _, c := range stage.Commands {
		if c == instructions.Command(run) {
			break
		}
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				v := kv.Value
				if kv.Key == "GOPROXY" && stageRoot != "" {
					if v, err = rebaseProxy(v, stageRoot); err != nil {
						return fmt.Errorf("%s:%d: ENV GOPROXY: %w", d.path, line(c.Location()), err)
					}
				}
				fmt.Fprintf(&b, "export %s=%s\n", kv.Key, shellQuote(v))
			}
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				if kv.Value != nil {
					fmt.Fprintf(&b, "if [ -z \"${%s+set}\" ]; then %s=%s; fi\n", kv.Key, kv.Key, shellQuote(*kv.Value))
				}
				fmt.Fprintf(&b, "export %s\n", kv.Key)
			}
		}
	}
	cmd := strings.Join(run.CmdLine, " ")
	if !strings.Contains(cmd, " /out/") {
		return fmt.Errorf("%s: the go build line writes nowhere under /out/: %s", d.path, cmd)
	}
	cmd = strings.ReplaceAll(cmd, " /out/", " "+shellQuote(strings.TrimSuffix(outDir, "/")+"/"))
	fmt.Fprintf(&b, "set -x\n%s\n", cmd)
	_, err = io.WriteString(w, b.String())
	return err
}

// rebaseProxy moves the file:// entries of the GOPROXY list v, absolute
// paths in the build stage, under stageRoot, the directory standing for
// the stage's "/". An entry naming a directory the stage does not hold is
// an error: go would only report the module as not found there.
func rebaseProxy(v, stageRoot string) (string, error) {
	var b strings.Builder
	for v != "" {
		entry, rest := v, ""
		if i := strings.IndexAny(v, ",|"); i >= 0 {
			entry, rest = v[:i], v[i:]
		}
		if p, ok := strings.CutPrefix(entry, "file://"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("%s: not an absolute path", entry)
			}
			root, err := filepath.Abs(stageRoot)
			if err != nil {
				return "", err
			}
			dir := filepath.Join(root, filepath.FromSlash(p))
			if info, err := os.Stat(dir); err != nil || !info.IsDir() {
				return "", fmt.Errorf("%s: the build stage holds no directory %s (is a COPY of it missing?)", entry, p)
			}
			entry = "file://" + filepath.ToSlash(dir)
		}
		b.WriteString(entry)
		if rest != "" {
			b.WriteString(rest[:1])
			rest = rest[1:]
		}
		v = rest
	}
	return b.String(), nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func runDockerfile(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dockerfile", flag.ContinueOnError)
	contextDir := fs.String("context", ".", "the build context, as the build sees it (see composecheck context)")
	script := fs.String("go-build", "", "write the go build script here")
	out := fs.String("out", "", "with -go-build: the directory standing for /out/")
	stageDir := fs.String("stage", "", "with -go-build: replay the build stage's COPYs into this directory, standing for /, and have the script cd to its WORKDIR")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (*script != "") != (*out != "") || (*stageDir != "" && *script == "") {
		return fmt.Errorf("%w: dockerfile [-context DIR] [-go-build SCRIPT -out DIR [-stage DIR]] DOCKERFILE", errUsage)
	}
	d, err := parseDockerfile(fs.Arg(0))
	if err != nil {
		return err
	}
	if err := d.check(*contextDir); err != nil {
		return err
	}
	if *script != "" {
		var b bytes.Buffer
		workdir := ""
		if *stageDir != "" {
			if workdir, err = d.materialize(*contextDir, *stageDir); err != nil {
				return err
			}
		}
		if err := d.goBuildScript(&b, *stageDir, workdir, *out); err != nil {
			return err
		}
		if err := os.WriteFile(*script, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(d.stages))
	for _, st := range d.stages {
		names = append(names, st.BaseName)
	}
	fmt.Fprintf(stdout, "%s: ok (%s)\n", d.path, strings.Join(slices.Compact(names), " -> "))
	return nil
}
