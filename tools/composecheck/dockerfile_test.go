package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDockerfileCheck(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		wantErr    []string
	}{
		{name: "fine", dockerfile: goodDockerfile},
		{
			name:       "no USER",
			dockerfile: strings.Replace(goodDockerfile, "USER nonroot:nonroot\n", "", 1),
			wantErr:    []string{"sets no USER"},
		},
		{
			name:       "root",
			dockerfile: strings.Replace(goodDockerfile, "USER nonroot:nonroot", "USER root", 1),
			wantErr:    []string{"runs as root"},
		},
		{
			name:       "shell-form healthcheck",
			dockerfile: strings.Replace(goodDockerfile, `HEALTHCHECK CMD ["/app", "healthcheck"]`, "HEALTHCHECK CMD /app healthcheck", 1),
			wantErr:    []string{"CMD-SHELL needs a shell"},
		},
		{
			name:       "no healthcheck",
			dockerfile: strings.Replace(goodDockerfile, `HEALTHCHECK CMD ["/app", "healthcheck"]`, "HEALTHCHECK NONE", 1),
			wantErr:    []string{"no HEALTHCHECK"},
		},
		{
			name:       "shell-form entrypoint",
			dockerfile: strings.Replace(goodDockerfile, `ENTRYPOINT ["/app"]`, "ENTRYPOINT /app", 1),
			wantErr:    []string{"ENTRYPOINT in shell form"},
		},
		{
			name:       "COPY of what the context lacks",
			dockerfile: strings.Replace(goodDockerfile, "COPY app/ app/", "COPY app/ app/\nCOPY libs/ libs/", 1),
			wantErr:    []string{"COPY libs/: nothing in the build context matches"},
		},
		{
			name:       "RUN on distroless",
			dockerfile: strings.Replace(goodDockerfile, "USER nonroot:nonroot", "RUN echo hi\nUSER nonroot:nonroot", 1),
			wantErr:    []string{"RUN in a stage on gcr.io/distroless/static-debian12:nonroot"},
		},
		{
			name:       "no go build",
			dockerfile: strings.Replace(goodDockerfile, "RUN CGO_ENABLED=0 go build -o /out/app ./app", "RUN true", 1),
			wantErr:    []string{"no RUN runs go build"},
		},
		{
			name:       "lint warning",
			dockerfile: strings.Replace(goodDockerfile, "AS build", "as build", 1),
			wantErr:    []string{"FromAsCasing"},
		},
		{
			name:       "unknown instruction",
			dockerfile: goodDockerfile + "EXPOSES 8080\n",
			wantErr:    []string{"unknown instruction", "EXPOSES"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"Dockerfile": tt.dockerfile, "go.work": "go 1.26\n", "app/main.go": "package main\n",
			})
			d, err := parseDockerfile(filepath.Join(dir, "Dockerfile"))
			if err == nil {
				err = d.check(dir)
			}
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestGoBuildScript(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Dockerfile": `FROM golang:1.26 AS build
ENV GOTOOLCHAIN=local
ARG VERSION=dev
ARG NOTE='it''s'
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -ldflags "-X main.version=${VERSION}" -o /out/app ./app
FROM scratch
COPY --from=build /out/app /app
`,
	})
	d, err := parseDockerfile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := d.goBuildScript(&b, "", "", "/tmp/x y"); err != nil {
		t.Fatal(err)
	}
	script := b.String()
	for _, want := range []string{
		"export GOTOOLCHAIN='local'\n",
		`if [ -z "${VERSION+set}" ]; then VERSION='dev'; fi` + "\nexport VERSION\n",
		`CGO_ENABLED=0 go build -ldflags "-X main.version=${VERSION}" -o '/tmp/x y/'app ./app` + "\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "--mount") {
		t.Errorf("script keeps the RUN's flags:\n%s", script)
	}

	// The script is valid sh and the ARG default gives way to the caller's.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	echo := strings.Replace(script, "set -x\nCGO_ENABLED=0 go build", "echo \"$VERSION $GOTOOLCHAIN\" #", 1)
	for env, want := range map[string]string{"": "dev local\n", "VERSION=v1.2.3": "v1.2.3 local\n"} {
		cmd := exec.Command(sh, "-c", echo)
		cmd.Env = append(os.Environ(), env)
		if env == "" {
			cmd.Env = filterEnv(os.Environ(), "VERSION")
		}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("with %q: %q, %v; want %q", env, out, err, want)
		}
	}
}

func filterEnv(env []string, drop string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, drop+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func TestCopyContext(t *testing.T) {
	src := writeFiles(t, map[string]string{
		".dockerignore":          "bin/\n**/*_test.go\n**/testdata\n*.md\n!KEEP.md\n",
		"go.work":                "go 1.26\n",
		"app/main.go":            "package main\n",
		"app/main_test.go":       "package main\n",
		"app/testdata/x.csv":     "x\n",
		"app/migrations/1.sql":   "select 1;\n",
		"bin/app":                "binary\n",
		"README.md":              "readme\n",
		"KEEP.md":                "kept\n",
		"libs/lib/lib.go":        "package lib\n",
		"libs/lib/testdata/a/b":  "b\n",
		"libs/lib/lib_test.go":   "package lib\n",
		"libs/lib/data/keep.csv": "keep\n",
	})
	dst := filepath.Join(t.TempDir(), "ctx")
	n, err := copyContext(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = filepath.WalkDir(dst, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(dst, path)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".dockerignore", "KEEP.md", "app/main.go", "app/migrations/1.sql", "go.work", "libs/lib/data/keep.csv", "libs/lib/lib.go"}
	if strings.Join(got, " ") != strings.Join(want, " ") || n != len(want) {
		t.Errorf("copied %d files %q, want %q", n, got, want)
	}
	// An excluded directory is not there, even empty: a COPY of it fails.
	for _, dir := range []string{"bin", "app/testdata", "libs/lib/testdata"} {
		if _, err := os.Stat(filepath.Join(dst, dir)); err == nil {
			t.Errorf("the copy holds the excluded directory %s", dir)
		}
	}
}

func TestStatic(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.25\n",
		"main.go": "package main\n\nfunc main() { println(\"hello\") }\n",
	})
	build := func(t *testing.T, cgo string, flags ...string) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "hello")
		cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED="+cgo, "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		return out
	}
	if _, err := checkStatic(build(t, "0", "-trimpath")); err != nil {
		t.Errorf("static binary: %v", err)
	}
	_, err := checkStatic(build(t, "0"))
	checkErr(t, err, []string{"without -trimpath"})
	if _, err := exec.LookPath("gcc"); err == nil {
		// The race detector needs cgo and links the C library dynamically.
		_, err := checkStatic(build(t, "1", "-trimpath", "-race"))
		checkErr(t, err, []string{"CGO_ENABLED=\"1\"", "dynamically linked"})
	}
}

func TestMaterialize(t *testing.T) {
	ctx := writeFiles(t, map[string]string{
		"go.work": "go 1.26\n", "go.work.sum": "\n", "libs/a/a.go": "package a\n",
		"services/api/main.go": "package main\n", "tests/e2e/go.mod": "module e2e\n", "README.md": "x\n",
	})
	tests := []struct {
		name, copies string
		want         []string // files under the stage root
	}{
		{
			name:   "per directory",
			copies: "COPY go.work* ./\nCOPY libs/ libs/\nCOPY services/ services/\n",
			want:   []string{"src/go.work", "src/go.work.sum", "src/libs/a/a.go", "src/services/api/main.go"},
		},
		{
			name:   "everything",
			copies: "COPY . .\n",
			want: []string{
				"src/README.md", "src/go.work", "src/go.work.sum", "src/libs/a/a.go",
				"src/services/api/main.go", "src/tests/e2e/go.mod",
			},
		},
		{
			name:   "a file renamed, absolute destination",
			copies: "COPY go.work /etc/work\n",
			want:   []string{"etc/work"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"Dockerfile": "FROM golang:1.26 AS build\nWORKDIR /src\n" + tt.copies +
				"RUN go build -o /out/api ./services/api\n"})
			d, err := parseDockerfile(filepath.Join(dir, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			workdir, err := d.materialize(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			if workdir != filepath.Join(root, "src") {
				t.Errorf("workdir = %s, want %s/src", workdir, root)
			}
			var got []string
			err = filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					rel, _ := filepath.Rel(root, path)
					got = append(got, filepath.ToSlash(rel))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("stage holds %q, want %q", got, tt.want)
			}
		})
	}
}
