package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testRepo is a throwaway git repository shaped like this one: a tiny lib,
// a service that requires it, versions.yaml, go.work and changelogs.
type testRepo struct {
	t   *testing.T
	dir string
}

// Files of the first release of the test repository.
var testFiles = map[string]string{
	"versions.yaml": `module-sets:
  tiny:
    version: v0.1.0
    modules:
      - example.com/mono/libs/tiny
  app:
    version: v0.1.0
    modules:
      - example.com/mono/services/app
excluded-modules:
  - example.com/mono/tools/helper
`,
	"go.work": `go 1.25.0

use (
	./libs/tiny
	./services/app
)

replace example.com/mono/libs/tiny v0.1.0 => ./libs/tiny
`,
	"libs/tiny/go.mod": "module example.com/mono/libs/tiny\n\ngo 1.25.0\n",
	"libs/tiny/tiny.go": `// Package tiny greets.
package tiny

// Hello greets.
func Hello() string { return "hello" }
`,
	"libs/tiny/CHANGELOG.md":    "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-11-26\n\n- Hello.\n",
	"services/app/go.mod":       "module example.com/mono/services/app\n\ngo 1.25.0\n\nrequire example.com/mono/libs/tiny v0.1.0\n",
	"services/app/CHANGELOG.md": "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-11-26\n\n- The app.\n",
	"services/app/main.go": `// Command app greets.
package main

import (
	"fmt"

	"example.com/mono/libs/tiny"
)

func main() { fmt.Println(greeting()) }

func greeting() string { return tiny.Hello() + ", world" }
`,
	"services/app/main_test.go": `package main

import "testing"

func TestGreeting(t *testing.T) {
	if got, want := greeting(), "hello, world"; got != want {
		t.Errorf("greeting() = %q, want %q", got, want)
	}
}
`,
	"tools/helper/go.mod":  "module example.com/mono/tools/helper\n\ngo 1.25.0\n",
	"tools/helper/main.go": "package main\n\nfunc main() {}\n",
}

// newTestRepo makes the test repository in a temporary directory with the
// given files committed as its first commit.
func newTestRepo(t *testing.T, files map[string]string) *testRepo {
	t.Helper()
	r := &testRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	for name, content := range files {
		r.write(name, content)
	}
	r.commit("first release")
	return r
}

// commitDate is the author and committer date of every commit of a test
// repository, so that what the tool prints of a release's date does not
// depend on the day the test runs.
const commitDate = "2026-11-26T12:00:00Z"

// git runs git in the test repository and returns its output.
func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir, "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+commitDate, "GIT_COMMITTER_DATE="+commitDate)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// write writes a file of the work tree.
func (r *testRepo) write(name, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// read reads a file of the work tree.
func (r *testRepo) read(name string) string {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(name)))
	if err != nil {
		r.t.Fatal(err)
	}
	return string(data)
}

// replace replaces old by new in a file of the work tree.
func (r *testRepo) replace(name, old, new string) {
	r.t.Helper()
	s := r.read(name)
	if !strings.Contains(s, old) {
		r.t.Fatalf("%s does not contain %q", name, old)
	}
	r.write(name, strings.ReplaceAll(s, old, new))
}

// commit commits every change of the work tree.
func (r *testRepo) commit(msg string) {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
}

// run runs the tool on the test repository and returns its output and error.
func (r *testRepo) run(args ...string) (string, error) {
	r.t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"-repo", r.dir}, args...), &out)
	return out.String(), err
}

// mustRun runs the tool and fails the test when it fails.
func (r *testRepo) mustRun(args ...string) string {
	r.t.Helper()
	out, err := r.run(args...)
	if err != nil {
		r.t.Fatalf("release %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// breakAPI gives tiny.Hello a parameter: an incompatible change.
func (r *testRepo) breakAPI() {
	r.t.Helper()
	r.replace("libs/tiny/tiny.go", "func Hello() string { return \"hello\" }", "func Hello(name string) string { return \"hello \" + name }")
}

// tinyVersion matches tiny's version line in versions.yaml.
var tinyVersion = regexp.MustCompile(`(  tiny:\n    version: )v\S+`)

// bump sets tiny's version in versions.yaml and adds its changelog section.
func (r *testRepo) bump(version string) {
	r.t.Helper()
	r.write("versions.yaml", tinyVersion.ReplaceAllString(r.read("versions.yaml"), "${1}"+version))
	r.replace("libs/tiny/CHANGELOG.md", "## [Unreleased]\n", "## [Unreleased]\n\n## ["+strings.TrimPrefix(version, "v")+"] - 2026-11-27\n\n- Changed.\n")
}

func TestCheckPassesOnTheFirstRelease(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testFiles)
	wantOutput(t, r.mustRun("check"), "libs/tiny: no changes since v0.1.0", "requires libs/tiny v0.1.0", "ok  \texample.com/mono/services/app")
}

// wantOutput fails t for each of wants that check's output out lacks.
func wantOutput(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// wantCheckFailure runs check in r and fails t unless check fails with
// each of wants in its output.
func wantCheckFailure(t *testing.T, r *testRepo, wants ...string) {
	t.Helper()
	out, err := r.run("check")
	if err == nil {
		t.Fatalf("check passed, want it to fail:\n%s", out)
	}
	wantOutput(t, out, wants...)
}

func TestCheckFailsOnAnIncompatibleChangeWithoutAMinorBump(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(r *testRepo)
		wantErr []string // each must be in the output; none means check passes
	}{
		{
			name:    "uncommitted break",
			change:  func(r *testRepo) { r.breakAPI() },
			wantErr: []string{"FAIL libs/tiny: incompatible API changes since v0.1.0", "while versions.yaml still names v0.1.0: release them as v0.2.0", "## incompatible changes", "Hello: changed from func() string to func(string) string"},
		},
		{
			name:    "committed break",
			change:  func(r *testRepo) { r.breakAPI(); r.commit("break") },
			wantErr: []string{"FAIL libs/tiny: incompatible API changes since v0.1.0", "1 files, 1 commits"},
		},
		{
			name: "break released as a patch",
			change: func(r *testRepo) {
				r.breakAPI()
				r.bump("v0.1.1")
				r.commit("tiny v0.1.1")
				r.mustRun("sync")
			},
			wantErr: []string{"FAIL libs/tiny: v0.1.0 -> v0.1.1, but for the changes since v0.1.0 gorelease suggests v0.2.0 at least", "Hello: changed"},
		},
		{
			name: "break released as a minor, prepared in the work tree",
			change: func(r *testRepo) {
				r.breakAPI()
				r.bump("v0.2.0")
				r.mustRun("sync")
			},
		},
		{
			name: "break released as a minor",
			change: func(r *testRepo) {
				r.breakAPI()
				r.bump("v0.2.0")
				r.mustRun("sync")
				r.commit("tiny v0.2.0")
			},
		},
		{
			name: "compatible addition, not released",
			change: func(r *testRepo) {
				r.write("libs/tiny/bye.go", "package tiny\n\n// Bye says goodbye.\nfunc Bye() string { return \"bye\" }\n")
				r.commit("bye")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newTestRepo(t, testFiles)
			tt.change(r)
			if len(tt.wantErr) > 0 {
				wantCheckFailure(t, r, tt.wantErr...)
				return
			}
			if out, err := r.run("check"); err != nil {
				t.Fatalf("check failed: %v\n%s", err, out)
			}
		})
	}
}

func TestCheckFailsWhenAServiceRequiresALibVersionThatIsNotThere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(r *testRepo)
		wantErr []string
	}{
		{
			name: "version never named",
			change: func(r *testRepo) {
				r.replace("services/app/go.mod", "tiny v0.1.0", "tiny v0.3.0")
				r.write("go.work", strings.Replace(testFiles["go.work"], "replace example.com/mono/libs/tiny v0.1.0 => ./libs/tiny",
					"replace example.com/mono/libs/tiny v0.1.0 => ./libs/tiny\n\nreplace example.com/mono/libs/tiny v0.3.0 => ./libs/tiny", 1))
				r.commit("app requires tiny v0.3.0")
			},
			wantErr: []string{"FAIL services/app requires libs/tiny v0.3.0, a version versions.yaml never named (released: v0.1.0)"},
		},
		{
			name: "service uses what the lib has not released",
			change: func(r *testRepo) {
				r.write("libs/tiny/bye.go", "package tiny\n\n// Bye says goodbye.\nfunc Bye() string { return \"bye\" }\n")
				r.replace("services/app/main.go", "tiny.Hello() + \", world\"", "tiny.Hello() + \", world\" + tiny.Bye()[:0]")
				r.commit("app uses tiny.Bye")
			},
			wantErr: []string{"services/app: go build outside the workspace", "undefined: tiny.Bye"},
		},
		{
			name: "version that does not build",
			change: func(r *testRepo) {
				r.replace("libs/tiny/tiny.go", "return \"hello\"", "return hello")
				r.bump("v0.1.1")
				r.replace("services/app/go.mod", "tiny v0.1.0", "tiny v0.1.1")
				r.mustRun("sync")
				r.commit("tiny v0.1.1, broken")
				// Mended after the release: v0.1.1 stays broken.
				r.replace("libs/tiny/tiny.go", "return hello", "return \"hello\"")
				r.commit("mend tiny")
			},
			wantErr: []string{"services/app: go build outside the workspace", "undefined: hello"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newTestRepo(t, testFiles)
			tt.change(r)
			wantCheckFailure(t, r, tt.wantErr...)
		})
	}
}

func TestCheckLeavesTheWorkTreeAlone(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testFiles)
	r.mustRun("check")
	if st := r.git("status", "--porcelain"); st != "" {
		t.Errorf("check changed the work tree:\n%s", st)
	}
}

func TestCheckFailsOnRepositoryDrift(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(r *testRepo)
		want   string
	}{
		{
			name:   "module missing from versions.yaml",
			change: func(r *testRepo) { r.write("tools/other/go.mod", "module example.com/mono/tools/other\n\ngo 1.25.0\n") },
			want:   "FAIL multimod verify: exit status 1",
		},
		{
			name:   "go.work without the replace of the new version",
			change: func(r *testRepo) { r.bump("v0.2.0") },
			want:   "go.work: missing replace example.com/mono/libs/tiny v0.2.0 => ./libs/tiny",
		},
		{
			name: "changelog without the new version",
			change: func(r *testRepo) {
				r.replace("versions.yaml", "  tiny:\n    version: v0.1.0", "  tiny:\n    version: v0.2.0")
				r.mustRun("sync")
			},
			want: "libs/tiny/CHANGELOG.md: no section for v0.2.0",
		},
		{
			name:   "changelog without Unreleased",
			change: func(r *testRepo) { r.replace("services/app/CHANGELOG.md", "## [Unreleased]\n", "") },
			want:   "services/app/CHANGELOG.md: no \"## [Unreleased]\" section",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newTestRepo(t, testFiles)
			tt.change(r)
			wantCheckFailure(t, r, tt.want)
		})
	}
}

func TestVersions(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testFiles)
	first := strings.TrimSpace(r.git("rev-parse", "HEAD"))[:12]
	r.replace("libs/tiny/CHANGELOG.md", "## [Unreleased]\n", "## [Unreleased]\n\n- Nothing yet.\n")
	r.commit("changelog only")
	r.write("services/app/extra.go", "package main\n")
	r.commit("app: extra")
	out := r.mustRun("versions", "-v")
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	for _, want := range []string{
		"libs/tiny v0.1.0 " + first + " " + commitDate[:10] + " no changes",
		"services/app v0.1.0 " + first + " " + commitDate[:10] + " unreleased changes: 1 files, 1 commits",
		"tools/helper - - excluded from releases",
		"services/app since v0.1.0:",
		"services/app/extra.go",
	} {
		if !slices.Contains(rows, want) {
			t.Errorf("versions output lacks the line %q:\n%s", want, out)
		}
	}
}

func TestHistoryReleasesAVersionAtTheCommitThatSetsIt(t *testing.T) {
	t.Parallel()
	files := map[string]string{}
	for k, v := range testFiles {
		files[k] = v
	}
	// Before the first release, versions.yaml was a flat list of planned
	// versions: it names no release.
	files["versions.yaml"] = "modules:\n  libs/tiny: v0.1.0\n  services/app: v0.1.0\n"
	r := newTestRepo(t, files)
	r.write("libs/tiny/more.go", "package tiny\n")
	r.commit("more, before the first release")
	r.write("versions.yaml", testFiles["versions.yaml"])
	r.commit("first release")
	firstRelease := strings.TrimSpace(r.git("rev-parse", "HEAD"))
	r.write("libs/tiny/later.go", "package tiny\n")
	r.commit("later")
	r.bump("v0.2.0")
	r.commit("tiny v0.2.0")
	second := strings.TrimSpace(r.git("rev-parse", "HEAD"))
	r.write("README", "unrelated\n")
	r.replace("versions.yaml", "module-sets:", "# comment\nmodule-sets:")
	r.commit("versions.yaml reworded")
	r.bump("v0.3.0") // in the work tree only

	st, err := loadState(context.Background(), r.dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rel := range st.hist["example.com/mono/libs/tiny"] {
		got = append(got, rel.Version+" "+rel.Commit)
	}
	want := []string{"v0.1.0 " + firstRelease, "v0.2.0 " + second, "v0.3.0 "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("releases of tiny (-want +got):\n%s", diff)
	}
}

func TestSyncKeepsGoWorkInStep(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testFiles)
	if out := r.mustRun("sync"); !strings.Contains(out, "in step") {
		t.Errorf("sync on a repository in step: %s", out)
	}
	r.bump("v0.2.0")
	r.mustRun("sync")
	got := r.read("go.work")
	for _, want := range []string{"example.com/mono/libs/tiny v0.1.0 => ./libs/tiny\n", "example.com/mono/libs/tiny v0.2.0 => ./libs/tiny\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("go.work after the bump:\n%s\nwant it to hold:\n%s", got, want)
		}
	}
	// Once the app requires v0.2.0, nothing requires v0.1.0 any more.
	r.replace("services/app/go.mod", "tiny v0.1.0", "tiny v0.2.0")
	r.mustRun("sync")
	if got := r.read("go.work"); strings.Contains(got, "v0.1.0") || !strings.Contains(got, "tiny v0.2.0 => ./libs/tiny") {
		t.Errorf("go.work after the app moved to v0.2.0:\n%s", got)
	}
	if out := r.mustRun("sync"); !strings.Contains(out, "in step") {
		t.Errorf("second sync: %s", out)
	}
}

// TestMultimodTagsARelease shows that multimod tags a release at the
// commit the versions command names, as the README says.
func TestMultimodTagsARelease(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testFiles)
	r.write("libs/tiny/more.go", "package tiny\n")
	r.commit("more")
	var commit string
	for _, l := range strings.Split(r.mustRun("versions"), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "libs/tiny" {
			commit = f[2]
		}
	}
	if commit == "" {
		t.Fatal("versions names no commit for libs/tiny")
	}
	tools, err := findTools(context.Background(), ".", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// multimod signs its tags (git tag -s): with an SSH key of the test's.
	key := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	for k, v := range map[string]string{"gpg.format": "ssh", "user.signingkey": key, "user.name": "test", "user.email": "test@example.com"} {
		r.git("config", k, v)
	}
	cmd := exec.Command(tools.multimod, "tag", "-m", "tiny", "-c", commit)
	cmd.Dir = r.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("multimod tag: %v\n%s", err, out)
	}
	got := strings.TrimSpace(r.git("rev-parse", "libs/tiny/v0.1.0^{commit}"))
	if want := strings.TrimSpace(r.git("rev-parse", commit)); got != want || got == strings.TrimSpace(r.git("rev-parse", "HEAD")) {
		t.Errorf("tag libs/tiny/v0.1.0 is at %s, want the first release %s", got, want)
	}
}

func TestShallowCloneIsRefused(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testFiles)
	r.write("libs/tiny/more.go", "package tiny\n")
	r.commit("more")
	clone := &testRepo{t: t, dir: t.TempDir()}
	clone.git("clone", "-q", "--depth", "1", "file://"+r.dir, ".")
	out, err := clone.run("versions")
	if err == nil || !strings.Contains(err.Error(), "shallow") {
		t.Errorf("versions in a shallow clone: error %v, want one about the shallow clone\n%s", err, out)
	}
}
