package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeProxy writes a file-based module proxy (GOPROXY=file://DIR) serving
// example.com/lib at each of versions, and returns DIR.
func writeProxy(t *testing.T, versions ...string) string {
	t.Helper()
	dir := t.TempDir()
	base := filepath.Join(dir, "example.com", "lib", "@v")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/lib\n\ngo 1.25\n"
	for _, v := range versions {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for name, content := range map[string]string{
			"go.mod": gomod,
			"lib.go": "// Package lib is a lib.\npackage lib\n\n// Version is the lib's version.\nconst Version = \"" + v + "\"\n",
		} {
			w, err := zw.Create("example.com/lib@" + v + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(content)); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string][]byte{
			v + ".zip":  b.Bytes(),
			v + ".mod":  []byte(gomod),
			v + ".info": []byte(`{"Version":"` + v + `","Time":"2024-01-01T00:00:00Z"}`),
		} {
			if err := os.WriteFile(filepath.Join(base, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(base, "list"), []byte(strings.Join(versions, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// replayDockerfile is an image build the way a service's Dockerfile does it:
// the module proxy and only the service's module, outside any workspace.
const replayDockerfile = `FROM golang:1.26-bookworm AS build
ENV GOTOOLCHAIN=local
COPY results/goproxy /goproxy
ENV GOWORK=off GOPROXY=file:///goproxy,off GONOSUMDB=example.com GOFLAGS=-mod=mod
WORKDIR /src/services/app
COPY services/app/ ./
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/app .
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER nonroot:nonroot
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
`

// TestReplayAgainstProxy runs what scripts/check-compose.sh runs for each
// Dockerfile: the context copied through .dockerignore with the module
// proxy put at results/goproxy, the build stage replayed, its go build line
// run as written against that proxy, and the binary checked.
func TestReplayAgainstProxy(t *testing.T) {
	const (
		ignore  = "results/\n!results/goproxy\n**/*_test.go\n"
		require = "module example.com/app\n\ngo 1.25\n\nrequire example.com/lib v0.1.0\n"
		mainGo  = "package main\n\nimport \"example.com/lib\"\n\nfunc main() { println(lib.Version) }\n"
	)
	tests := []struct {
		name       string
		ignore     string
		gomod      string
		dockerfile string
		versions   []string // served by the proxy
		wantErr    []string // from the dockerfile command (nil: none)
		wantBuild  []string // in the go build's output when it must fail (nil: it succeeds)
		wantStatic []string // from the static command (nil: none)
	}{
		{name: "fine", ignore: ignore, gomod: require, dockerfile: replayDockerfile, versions: []string{"v0.1.0"}},
		{
			name: "a lib version the proxy does not serve", ignore: ignore, dockerfile: replayDockerfile,
			gomod:     strings.Replace(require, "v0.1.0", "v0.2.0", 1),
			versions:  []string{"v0.1.0"},
			wantBuild: []string{"example.com/lib v0.2.0"},
		},
		{
			name: "the wrong directory copied", ignore: ignore, gomod: require, versions: []string{"v0.1.0"},
			dockerfile: strings.Replace(replayDockerfile, "COPY services/app/ ./", "COPY services/ ./", 1),
			wantBuild:  []string{"go.mod"},
		},
		{
			name: "another module's directory copied", ignore: ignore, gomod: require, versions: []string{"v0.1.0"},
			dockerfile: strings.Replace(replayDockerfile, "COPY services/app/ ./", "COPY services/other/ ./", 1),
			wantStatic: []string{"is example.com/other of module example.com/other, want the module example.com/app"},
		},
		{
			name: "no COPY of the proxy", ignore: ignore, gomod: require, versions: []string{"v0.1.0"},
			dockerfile: strings.Replace(replayDockerfile, "COPY results/goproxy /goproxy\n", "", 1),
			wantErr:    []string{"file:///goproxy: the build stage holds no directory /goproxy"},
		},
		{
			name: ".dockerignore drops the proxy", ignore: "results/\n", gomod: require, versions: []string{"v0.1.0"},
			dockerfile: replayDockerfile,
			wantErr:    []string{"COPY results/goproxy: nothing in the build context matches"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeFiles(t, map[string]string{
				".dockerignore":                tt.ignore,
				"services/app/Dockerfile":      tt.dockerfile,
				"services/app/go.mod":          tt.gomod,
				"services/app/main.go":         mainGo,
				"services/app/main_test.go":    "package main\n",
				"services/other/go.mod":        "module example.com/other\n\ngo 1.25\n",
				"services/other/main.go":       "package main\n\nfunc main() {}\n",
				"results/goproxy/stale/x.info": "{}\n", // replaced by the -add directory
			})
			proxy := writeProxy(t, tt.versions...)
			tmp := t.TempDir()
			ctxDir, stage, out, script := filepath.Join(tmp, "context"), filepath.Join(tmp, "stage"), filepath.Join(tmp, "out"), filepath.Join(tmp, "build.sh")
			var stdout bytes.Buffer
			if err := run(context.Background(), []string{"context", "-add", "results/goproxy=" + proxy, "-o", ctxDir, src}, &stdout); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(ctxDir, "results", "goproxy", "stale")); err == nil {
				t.Error("the context keeps what the source held at the -add path")
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			err := run(context.Background(), []string{
				"dockerfile", "-context", ctxDir, "-go-build", script, "-stage", stage, "-out", out,
				filepath.Join(src, "services", "app", "Dockerfile"),
			}, &stdout)
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != nil {
				return
			}

			cmd := exec.Command("sh", script)
			cmd.Env = buildEnv(t)
			b, err := cmd.CombinedOutput()
			if tt.wantBuild != nil {
				if err == nil {
					t.Fatalf("the go build line succeeded, want it to fail:\n%s", b)
				}
				for _, w := range tt.wantBuild {
					if !strings.Contains(string(b), w) {
						t.Errorf("go build's output lacks %q:\n%s", w, b)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			err = run(context.Background(), []string{"static", "-module", filepath.Join(src, "services", "app"), filepath.Join(out, "app")}, &stdout)
			checkErr(t, err, tt.wantStatic)
		})
	}
}

// buildEnv is the environment of a replayed build: the caller's, without
// the settings a build stage does not inherit, with a module cache of the
// test's own so that nothing comes from an earlier download.
func buildEnv(t *testing.T) []string {
	t.Helper()
	modcache := t.TempDir()
	t.Cleanup(func() { makeWritable(t, modcache) }) // runs before TempDir's removal
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOFLAGS", "GOWORK", "GOPROXY", "GONOSUMDB", "GONOPROXY", "GOPRIVATE", "GOSUMDB", "GOMODCACHE", "GOOS", "GOARCH", "GOENV", "VERSION":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOENV=off", "GOMODCACHE="+modcache, "VERSION=test")
}

// makeWritable lets a module cache, which go makes read-only, be removed.
func makeWritable(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

func TestRebaseProxy(t *testing.T) {
	root := writeFiles(t, map[string]string{"goproxy/list": "", "other/list": ""})
	tests := []struct {
		in, want string
		wantErr  []string
	}{
		{in: "file:///goproxy,https://proxy.golang.org", want: "file://" + filepath.ToSlash(root) + "/goproxy,https://proxy.golang.org"},
		{in: "https://proxy.golang.org|file:///other|direct", want: "https://proxy.golang.org|file://" + filepath.ToSlash(root) + "/other|direct"},
		{in: "off", want: "off"},
		{in: "file:///missing,off", wantErr: []string{"file:///missing", "no directory /missing"}},
		{in: "file://goproxy", wantErr: []string{"not an absolute path"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := rebaseProxy(tt.in, root)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("rebaseProxy(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestStaticDependencies: a binary built with a lib from a local directory
// (go.work, or a replace by a path) is not one built from the lib's version.
func TestStaticDependencies(t *testing.T) {
	const gomod = "module example.com/hello\n\ngo 1.25\n\nrequire example.com/lib v0.1.0\n"
	files := map[string]string{
		"hello/main.go": "package main\n\nimport \"example.com/lib\"\n\nfunc main() { println(lib.Version) }\n",
		"lib/go.mod":    "module example.com/lib\n\ngo 1.25\n",
		"lib/lib.go":    "// Package lib is a lib.\npackage lib\n\n// Version is the lib's version.\nconst Version = \"local\"\n",
	}
	tests := []struct {
		name    string
		files   map[string]string
		gowork  string
		wantErr []string
	}{
		{
			name:    "replace by a directory",
			files:   map[string]string{"hello/go.mod": gomod + "\nreplace example.com/lib => ../lib\n"},
			gowork:  "off",
			wantErr: []string{"example.com/lib v0.1.0 was replaced by the directory ../lib"},
		},
		{
			name:    "workspace",
			files:   map[string]string{"hello/go.mod": gomod, "go.work": "go 1.25\n\nuse (\n\t./hello\n\t./lib\n)\n"},
			wantErr: []string{"example.com/lib is at (devel), with no checksum"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := map[string]string{}
			for k, v := range files {
				all[k] = v
			}
			for k, v := range tt.files {
				all[k] = v
			}
			dir := writeFiles(t, all)
			out := filepath.Join(t.TempDir(), "hello")
			cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
			cmd.Dir = filepath.Join(dir, "hello")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOPROXY=off", "GOWORK="+tt.gowork)
			if tt.gowork == "" {
				cmd.Env = append(cmd.Env, "GOWORK="+filepath.Join(dir, "go.work"))
			}
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			_, err := checkStatic(out)
			checkErr(t, err, tt.wantErr)
		})
	}
}
