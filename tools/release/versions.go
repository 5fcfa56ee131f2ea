package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// versionsFile is versions.yaml in the form opentelemetry-go-contrib keeps
// it: module sets, each one version shared by its modules, and the modules
// that are never released.
type versionsFile struct {
	ModuleSets      map[string]moduleSet `yaml:"module-sets"`
	ExcludedModules []string             `yaml:"excluded-modules"`
}

// moduleSet is a group of modules released together at one version.
type moduleSet struct {
	Version string   `yaml:"version"`
	Modules []string `yaml:"modules"`
}

// versions is what versions.yaml says: each released module's current
// version, and the modules it leaves out of releases.
type versions struct {
	// version maps a module path to its version.
	version map[string]string
	// set maps a module path to the name of its module set.
	set map[string]string
	// excluded holds the module paths that are never released.
	excluded map[string]bool
}

// parseVersions reads versions.yaml. A file without module sets (such as
// the flat list versions.yaml held before the first release) is valid and
// names no versions: that is how the history before the first release reads.
func parseVersions(data []byte) (versions, error) {
	v := versions{version: map[string]string{}, set: map[string]string{}, excluded: map[string]bool{}}
	var f versionsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return v, fmt.Errorf("parse versions.yaml: %w", err)
	}
	for _, name := range sortedKeys(f.ModuleSets) {
		s := f.ModuleSets[name]
		if !semver.IsValid(s.Version) || semver.Canonical(s.Version) != s.Version {
			return v, fmt.Errorf("versions.yaml: module set %s: %q is not a canonical semantic version (vX.Y.Z)", name, s.Version)
		}
		if len(s.Modules) == 0 {
			return v, fmt.Errorf("versions.yaml: module set %s has no modules", name)
		}
		for _, p := range s.Modules {
			if other, ok := v.set[p]; ok {
				return v, fmt.Errorf("versions.yaml: %s is in module sets %s and %s", p, other, name)
			}
			if err := module.Check(p, s.Version); err != nil {
				return v, fmt.Errorf("versions.yaml: module set %s: %w", name, err)
			}
			v.version[p] = s.Version
			v.set[p] = name
		}
	}
	for _, p := range f.ExcludedModules {
		if _, ok := v.set[p]; ok {
			return v, fmt.Errorf("versions.yaml: %s is both in module set %s and excluded", p, v.set[p])
		}
		v.excluded[p] = true
	}
	return v, nil
}

// released lists the released module paths, sorted.
func (v versions) released() []string { return sortedKeys(v.version) }

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
