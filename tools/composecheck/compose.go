package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
)

// warningHook collects compose-go's warnings (an unset variable, an
// obsolete attribute), which `docker compose` only prints.
type warningHook struct {
	mu       sync.Mutex
	warnings []string
}

func (h *warningHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h *warningHook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.warnings = append(h.warnings, e.Message)
	return nil
}

// loadProject loads files as one compose project the way `docker compose -f
// file...` does, with env as the only environment for interpolation. A
// missing env_file is read from the same path plus ".example" when that
// exists; notes says so. Warnings compose would print are returned as
// errors.
func loadProject(ctx context.Context, files []string, env []string) (p *types.Project, notes []string, err error) {
	hook := &warningHook{}
	logger := logrus.StandardLogger()
	prevOut, prevHooks := logger.Out, logger.ReplaceHooks(logrus.LevelHooks{})
	logger.SetOutput(io.Discard)
	logger.AddHook(hook)
	defer func() {
		logger.SetOutput(prevOut)
		logger.ReplaceHooks(prevHooks)
	}()

	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithoutEnvironmentResolution,
	)
	if err != nil {
		return nil, nil, err
	}
	p, err = opts.LoadProject(ctx)
	if err != nil {
		return nil, nil, err
	}
	for name, s := range p.Services {
		for i, ef := range s.EnvFiles {
			if _, err := os.Stat(ef.Path); !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if _, err := os.Stat(ef.Path + ".example"); err == nil {
				notes = append(notes, fmt.Sprintf("%s: env_file %s is missing; checked with %s.example", name, filepath.Base(ef.Path), filepath.Base(ef.Path)))
				s.EnvFiles[i].Path = ef.Path + ".example"
			}
		}
		p.Services[name] = s
	}
	p, err = p.WithServicesEnvironmentResolved(false)
	if err != nil {
		return nil, nil, err
	}
	if len(hook.warnings) > 0 {
		var pr problems
		for _, w := range hook.warnings {
			pr.add("compose warns: %s", w)
		}
		return nil, nil, pr.err()
	}
	slices.Sort(notes)
	return p, notes, nil
}

// checkProject reports what would go wrong when the project is built and
// started: missing bind-mount sources, Dockerfiles that fail their checks,
// service_healthy dependencies on services with no healthcheck, variables
// without a value. The Dockerfiles of builds whose context is the project's
// directory are checked against buildContext when it is not empty: a copy
// of that context as the build sees it (see copyContext).
func checkProject(p *types.Project, buildContext string) error {
	var pr problems
	dockerfiles := map[string]*dockerfile{}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Build != nil {
			path := s.Build.Dockerfile
			if !filepath.IsAbs(path) {
				path = filepath.Join(s.Build.Context, path)
			}
			contextDir := s.Build.Context
			if buildContext != "" && sameDir(contextDir, p.WorkingDir) {
				contextDir = buildContext
			}
			d, err := parseDockerfile(path)
			if err != nil {
				pr.add("%s: build: %w", name, err)
			} else if err := d.check(contextDir); err != nil {
				pr.add("%s: build: %w", name, err)
			} else {
				dockerfiles[name] = d
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			// A missing source would be created as an empty directory.
			if _, err := os.Stat(v.Source); err != nil {
				pr.add("%s: bind mount %s -> %s: %w", name, v.Source, v.Target, err)
			}
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range s.Environment {
				if !yield(k) {
					return
				}
			}
		}) {
			if s.Environment[k] == nil {
				pr.add("%s: environment %s has no value", name, k)
			}
		}
	}
	for _, name := range p.ServiceNames() {
		for dep, cfg := range p.Services[name].DependsOn {
			if cfg.Condition != types.ServiceConditionHealthy {
				continue
			}
			ds, ok := p.Services[dep]
			switch {
			case !ok:
				pr.add("%s: depends on %s, which is not in the project", name, dep)
			case ds.HealthCheck != nil && ds.HealthCheck.Disable:
				pr.add("%s: waits for %s to be healthy, but its healthcheck is disabled", name, dep)
			case ds.HealthCheck != nil && len(ds.HealthCheck.Test) > 0:
			case dockerfiles[dep] != nil && dockerfiles[dep].healthcheck() != nil:
			case ds.Build != nil && dockerfiles[dep] == nil:
				// Its Dockerfile failed, which is reported already.
			default:
				pr.add("%s: waits for %s to be healthy, but %s has no healthcheck (neither in compose nor in its Dockerfile)", name, dep, dep)
			}
		}
	}
	return pr.err()
}

// publishedPorts lists the host ports the project publishes, as
// "service:port", sorted.
func publishedPorts(p *types.Project) []string {
	var ports []string
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Published != "" {
				ports = append(ports, name+":"+port.Published)
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// checkPublished compares the published ports with want.
func checkPublished(p *types.Project, want []string) error {
	got := publishedPorts(p)
	want = slices.Sorted(slices.Values(want))
	var pr problems
	for _, g := range got {
		if !slices.Contains(want, g) {
			pr.add("published but not expected: %s", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			pr.add("expected but not published: %s", w)
		}
	}
	return pr.err()
}

// checkRequiredEnv checks each "service:VAR" of required has a non-empty
// value.
func checkRequiredEnv(p *types.Project, required []string) error {
	var pr problems
	for _, r := range required {
		svc, v, ok := strings.Cut(r, ":")
		if !ok {
			pr.add("-require-env %q: want service:VARIABLE", r)
			continue
		}
		s, ok := p.Services[svc]
		if !ok {
			pr.add("-require-env %s: no service %s", r, svc)
			continue
		}
		if val := s.Environment[v]; val == nil || *val == "" {
			pr.add("%s: %s is not set", svc, v)
		}
	}
	return pr.err()
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	a, errA := filepath.Abs(a)
	b, errB := filepath.Abs(b)
	return errA == nil && errB == nil && a == b
}

func runCompose(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	published := fs.String("published", "", "comma-separated service:port: exactly the host ports to be published (unchecked when empty)")
	requireEnv := fs.String("require-env", "", "comma-separated service:VARIABLE that must have a non-empty value")
	buildContext := fs.String("context", "", "check the Dockerfiles of builds whose context is the project directory against this copy of it (see composecheck context)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: compose [-published svc:port,...] [-require-env svc:VAR,...] [-context DIR] FILE...", errUsage) //nolint:staticcheck // ST1005: a usage line, "..." means repeated
	}
	files := fs.Args()
	label := strings.Join(files, " + ")
	p, notes, err := loadProject(ctx, files, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	for _, n := range notes {
		fmt.Fprintf(stdout, "%s: note: %s\n", label, n)
	}
	pr := problems{}
	if err := checkProject(p, *buildContext); err != nil {
		pr = append(pr, err)
	}
	if *published != "" {
		if err := checkPublished(p, splitList(*published)); err != nil {
			pr = append(pr, err)
		}
	}
	if err := checkRequiredEnv(p, splitList(*requireEnv)); err != nil {
		pr = append(pr, err)
	}
	if err := pr.err(); err != nil {
		return fmt.Errorf("%s:\n%w", label, err)
	}
	fmt.Fprintf(stdout, "%s: ok: %d services (%s); published %s\n",
		label, len(p.Services), strings.Join(p.ServiceNames(), " "), strings.Join(publishedPorts(p), " "))
	return nil
}
