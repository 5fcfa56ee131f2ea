package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// readWork parses the go.work at root; it returns nil when there is none.
func readWork(root string) (*modfile.WorkFile, error) {
	file := filepath.Join(root, "go.work")
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return modfile.ParseWork(file, data, nil)
}

// syncWork keeps go.work's replace directives in step with versions.yaml.
// Inside the workspace a module's requirement on one of our modules only
// resolves through a replace of that very version (go reads the required
// go.mod before it prefers the workspace's copy), so go.work needs, for
// every module of ours that a module of the workspace requires, a replace
// to its directory for each version required and for its current version,
// and no other replace of our modules. It returns the differences it found,
// and writes go.work with them mended when write is true. An unversioned
// replace of a module covers all its versions.
func syncWork(st *state, write bool) (*modfile.WorkFile, []string, error) {
	wf, err := readWork(st.repo.root)
	if err != nil || wf == nil {
		return nil, nil, err
	}
	want, err := wantedReplaces(st, wf)
	if err != nil {
		return nil, nil, err
	}
	have, unversioned := ourReplaces(st, wf)
	var drift []string
	var add, drop []module.Version
	for _, mv := range sortedVersions(want) {
		if unversioned[mv.Path] {
			continue
		}
		switch got, ok := have[mv]; {
		case !ok:
			drift = append(drift, fmt.Sprintf("missing replace %s %s => %s", mv.Path, mv.Version, want[mv]))
			add = append(add, mv)
		case filepath.Clean(got) != filepath.Clean(want[mv]):
			drift = append(drift, fmt.Sprintf("replace %s %s => %s should go to %s", mv.Path, mv.Version, got, want[mv]))
			add = append(add, mv)
		}
	}
	for _, mv := range sortedVersions(have) {
		if _, ok := want[mv]; !ok {
			drift = append(drift, fmt.Sprintf("replace %s %s is not needed: no module of the workspace requires that version and versions.yaml names %s", mv.Path, mv.Version, st.vers.version[mv.Path]))
			drop = append(drop, mv)
		}
	}
	if !write || len(drift) == 0 {
		return wf, drift, nil
	}
	return wf, drift, rewriteWork(st.repo.root, wf, want, add, drop)
}

// wantedReplaces maps each version of our modules that go.work needs a
// replace of to the directory it goes to: every version a module of the
// workspace requires, and the current version of each.
func wantedReplaces(st *state, wf *modfile.WorkFile) (map[module.Version]string, error) {
	byDir := map[string]repoModule{}
	for _, m := range st.mods {
		byDir[m.Dir] = m
	}
	want := map[module.Version]string{}
	for _, u := range wf.Use {
		m, ok := byDir[filepath.ToSlash(filepath.Clean(u.Path))]
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(st.repo.root, filepath.FromSlash(m.Dir), "go.mod"))
		if err != nil {
			return nil, err
		}
		f, err := modfile.ParseLax(m.Dir+"/go.mod", data, nil)
		if err != nil {
			return nil, err
		}
		for _, r := range f.Require {
			cur, ok := st.vers.version[r.Mod.Path]
			if !ok {
				continue
			}
			target := "./" + st.mods[r.Mod.Path].Dir
			want[r.Mod] = target
			want[module.Version{Path: r.Mod.Path, Version: cur}] = target
		}
	}
	return want, nil
}

// ourReplaces returns go.work's versioned replaces of our modules, each to
// its target, and the modules it replaces at every version.
func ourReplaces(st *state, wf *modfile.WorkFile) (have map[module.Version]string, unversioned map[string]bool) {
	have, unversioned = map[module.Version]string{}, map[string]bool{}
	for _, r := range wf.Replace {
		if _, ok := st.mods[r.Old.Path]; !ok {
			continue
		}
		if r.Old.Version == "" {
			unversioned[r.Old.Path] = true
			continue
		}
		target := r.New.Path
		if r.New.Version != "" {
			target += " " + r.New.Version
		}
		have[r.Old] = target
	}
	return have, unversioned
}

// rewriteWork drops and adds replaces in wf and writes it to root/go.work.
func rewriteWork(root string, wf *modfile.WorkFile, want map[module.Version]string, add, drop []module.Version) error {
	for _, mv := range drop {
		if err := wf.DropReplace(mv.Path, mv.Version); err != nil {
			return err
		}
	}
	for _, mv := range add {
		if err := wf.AddReplace(mv.Path, mv.Version, want[mv], ""); err != nil {
			return err
		}
	}
	wf.Cleanup()
	return os.WriteFile(filepath.Join(root, "go.work"), modfile.Format(wf.Syntax), 0o644)
}

// sortedVersions returns the keys of m by path, then version.
func sortedVersions[V any](m map[module.Version]V) []module.Version {
	out := make([]module.Version, 0, len(m))
	for mv := range m {
		out = append(out, mv)
	}
	module.Sort(out)
	return out
}
