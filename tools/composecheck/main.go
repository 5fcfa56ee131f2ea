// Command composecheck checks txpersister's container setup where no Docker
// engine runs, with the parsers Docker itself uses: compose-go (Compose v2)
// for the compose files and BuildKit's Dockerfile parser for the Dockerfiles.
//
// Usage:
//
//	composecheck compose [-published svc:port,...] [-require-env svc:VAR,...] [-context DIR] FILE...
//	    Load FILE... as one project, the way `docker compose -f FILE...`
//	    does (merge, !reset/!override, interpolation, schema, references),
//	    with an empty environment so that defaults are what is checked. A
//	    missing env_file is read from FILE.example when that exists. Then
//	    check that bind-mounted paths exist, that every build's Dockerfile
//	    passes the checks below (against DIR, a copy made by the context
//	    command, for builds whose context is the project's directory), that
//	    a depends_on condition service_healthy names a service with a
//	    healthcheck (its own or its Dockerfile's), with -published that
//	    exactly these host ports are published, and with -require-env that
//	    these variables have a value.
//
//	composecheck context -o DIR [-add PATH=SRCDIR]... [SRC]
//	    Copy the build context SRC (default .) to DIR, leaving out what
//	    SRC/.dockerignore excludes: the files a build would see. Each -add
//	    puts SRCDIR's files at PATH instead of what SRC holds there, through
//	    the same .dockerignore: what a step before the build writes there
//	    (results/goproxy, written by `make images-proxy`).
//
//	composecheck dockerfile [-context DIR] [-go-build SCRIPT -out DIR [-stage DIR]] DOCKERFILE
//	    Parse DOCKERFILE, fail on BuildKit's lint warnings, check that every
//	    COPY source exists in the context DIR (default .), that the final
//	    stage runs as a non-root USER with an exec-form ENTRYPOINT and an
//	    exec-form HEALTHCHECK (a distroless image has no shell), and that a
//	    stage runs `go build`. With -go-build, write a sh script that runs
//	    that stage's `go build` line as written, with its ENV and ARG
//	    defaults, its /out/ directory replaced by -out. With -stage, replay
//	    the stage's WORKDIR and COPY lines into that directory, standing for
//	    the stage's /, have the script run in its WORKDIR, and move
//	    GOPROXY's file:// directories under it (one the stage lacks is an
//	    error).
//
//	composecheck static [-module DIR] BINARY...
//	    Check each Go binary is statically linked (no ELF interpreter, no
//	    shared libraries), was built with CGO_ENABLED=0 and -trimpath, and
//	    took no module from a local directory (a go.work workspace module or
//	    a replace by a path), so that it holds the versions go.mod requires.
//	    With -module, check it is the build of the module DIR/go.mod
//	    declares, its main package at the module's root.
//
// It is a module of its own, outside go.work, so that its dependencies
// never reach the services; run it with GOWORK=off.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
}

// errUsage reports a command line composecheck does not understand.
var errUsage = errors.New("usage: composecheck compose|context|dockerfile|static ... (see the package doc)")

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "compose":
		return runCompose(ctx, args[1:], stdout)
	case "context":
		return runContext(args[1:], stdout)
	case "dockerfile":
		return runDockerfile(args[1:], stdout)
	case "static":
		return runStatic(args[1:], stdout)
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}

// problems collects what a check found wrong, to report all of it at once.
type problems []error

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Errorf(format, args...))
}

func (p problems) err() error { return errors.Join(p...) }
