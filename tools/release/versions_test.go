package main

import (
	"strings"
	"testing"
)

func TestParseVersions(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    map[string]string
		wantErr string
	}{
		{
			name: "module sets",
			yaml: "module-sets:\n  a:\n    version: v0.1.0\n    modules:\n      - example.com/m/a\n      - example.com/m/b\n  c:\n    version: v1.2.3\n    modules:\n      - example.com/m/c\nexcluded-modules:\n  - example.com/m/x\n",
			want: map[string]string{"example.com/m/a": "v0.1.0", "example.com/m/b": "v0.1.0", "example.com/m/c": "v1.2.3"},
		},
		{name: "flat list before the first release", yaml: "modules:\n  libs/a: v0.1.0\n", want: map[string]string{}},
		{name: "empty", yaml: "", want: map[string]string{}},
		{name: "not canonical", yaml: "module-sets:\n  a:\n    version: v0.1\n    modules: [example.com/m/a]\n", wantErr: `"v0.1" is not a canonical semantic version`},
		{name: "twice", yaml: "module-sets:\n  a:\n    version: v0.1.0\n    modules: [example.com/m/a]\n  b:\n    version: v0.2.0\n    modules: [example.com/m/a]\n", wantErr: "is in module sets a and b"},
		{name: "v2 without /v2", yaml: "module-sets:\n  a:\n    version: v2.0.0\n    modules: [example.com/m/a]\n", wantErr: "invalid version"},
		{name: "released and excluded", yaml: "module-sets:\n  a:\n    version: v0.1.0\n    modules: [example.com/m/a]\nexcluded-modules: [example.com/m/a]\n", wantErr: "both in module set a and excluded"},
		{name: "no modules", yaml: "module-sets:\n  a:\n    version: v0.1.0\n", wantErr: "has no modules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseVersions([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseVersions: error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(v.version) != len(tt.want) {
				t.Errorf("got %v, want %v", v.version, tt.want)
			}
			for p, want := range tt.want {
				if got := v.version[p]; got != want {
					t.Errorf("version of %s = %q, want %q", p, got, want)
				}
			}
		})
	}
}
