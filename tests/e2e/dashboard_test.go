package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The conventions of Grafana's dashboard-linter
// (github.com/grafana/dashboard-linter), which is run by hand (it is not
// on the module proxy; see ops/grafana/dashboards/.lint), kept here so
// that a dashboard change that breaks them fails the tests: a templated
// Prometheus data source, job and instance variables as Grafana's mixins
// have them, every selector filtered by both, and a unit on every panel.

// dashboard is the part of a Grafana dashboard the conventions are about.
type dashboard struct {
	Title      string `json:"title"`
	Editable   bool   `json:"editable"`
	Templating struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type templateVar struct {
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasourceRef  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Refresh    int             `json:"refresh"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardPanel struct {
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	Targets     []struct {
		Datasource *datasourceRef `json:"datasource"`
		Expr       string         `json:"expr"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
		Overrides []struct {
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
}

// unit is the panel's unit: its default, or one an override sets.
func (p dashboardPanel) unit() string {
	if p.FieldConfig.Defaults.Unit != "" {
		return p.FieldConfig.Defaults.Unit
	}
	for _, o := range p.FieldConfig.Overrides {
		for _, prop := range o.Properties {
			if s, ok := prop.Value.(string); ok && prop.ID == "unit" && s != "" {
				return s
			}
		}
	}
	return ""
}

func TestDashboardsFollowGrafanasConventions(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(repoRoot, "ops/grafana/dashboards/*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboard in ops/grafana/dashboards (%v)", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var d dashboard
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if d.Editable {
				t.Error("the dashboard is editable: provisioned dashboards are changed in the repository")
			}
			checkTemplating(t, d.Templating.List)
			for _, p := range d.Panels {
				checkPanel(t, p)
			}
		})
	}
}

// checkTemplating checks the variables: the Prometheus data source first,
// then job and instance, multi-valued with ".+" for All, reloaded on a
// change of the time range, their queries on the templated data source.
func checkTemplating(t *testing.T, vars []templateVar) {
	t.Helper()
	if len(vars) == 0 || vars[0].Type != "datasource" || vars[0].Name != "datasource" || string(vars[0].Query) != `"prometheus"` || vars[0].Label != "Data source" {
		t.Errorf(`the first variable must be {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"}, got %+v`, vars)
	}
	for name, label := range map[string]string{"job": "Job", "instance": "Instance"} {
		var v *templateVar
		for i := range vars {
			if vars[i].Name == name {
				v = &vars[i]
			}
		}
		switch {
		case v == nil:
			t.Errorf("no %q variable", name)
		case v.Type != "query" || v.Label != label || !v.Multi || !v.IncludeAll || v.AllValue != ".+" || v.Refresh != 2:
			t.Errorf(`variable %q: want type "query", label %q, multi, includeAll, allValue ".+", refresh 2 (on time range change); got %+v`, name, label, *v)
		case v.Datasource == nil || v.Datasource.UID != "${datasource}":
			t.Errorf("variable %q queries %+v, want the uid ${datasource}", name, v.Datasource)
		case !strings.Contains(string(v.Query), "label_values("):
			t.Errorf("variable %q: query %s, want label_values(...)", name, v.Query)
		}
	}
}

// checkPanel checks a panel: a description, a unit, and when it reads
// Prometheus the templated data source and every selector filtered by
// $job and $instance.
func checkPanel(t *testing.T, p dashboardPanel) {
	t.Helper()
	if p.Type == "row" {
		return
	}
	if p.Title == "" || p.Description == "" {
		t.Errorf("panel %q: a title and a description, please", p.Title)
	}
	if p.unit() == "" {
		t.Errorf("panel %q has no unit (fieldConfig.defaults.unit or an override)", p.Title)
	}
	if p.Datasource == nil || p.Datasource.Type != "prometheus" {
		return
	}
	if p.Datasource.UID != "${datasource}" {
		t.Errorf("panel %q uses the data source %q, want ${datasource}", p.Title, p.Datasource.UID)
	}
	for _, tg := range p.Targets {
		if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: a target uses the data source %+v, want ${datasource}", p.Title, tg.Datasource)
		}
		for _, s := range unfilteredSelectors(tg.Expr) {
			t.Errorf(`panel %q: %s in %q lacks job=~"$job" and instance=~"$instance"`, p.Title, s, tg.Expr)
		}
	}
}

// unfilteredSelectors returns the selectors of expr that do not match on
// both job=~"$job" and instance=~"$instance".
func unfilteredSelectors(expr string) []string {
	var out []string
	for _, name := range promqlMetricNames(expr) {
		re := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b(\{[^}]*\})?`)
		for _, m := range re.FindAllStringSubmatch(expr, -1) {
			if !strings.Contains(m[1], `job=~"$job"`) || !strings.Contains(m[1], `instance=~"$instance"`) {
				out = append(out, m[0])
			}
		}
	}
	return out
}

func TestUnfilteredSelectors(t *testing.T) {
	tests := []struct {
		expr string
		want int
	}{
		{`sum(rate(a_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))`, 0},
		{`sum(rate(a_total{job=~"$job", instance=~"$instance", code="5xx"}[5m])) / sum(rate(a_total[5m]))`, 1},
		{`up`, 1},
		{`max by (instance) (b{job=~"$job"})`, 1},
		{`histogram_quantile(0.5, sum by (le) (rate(c_bucket{instance=~"$instance",job=~"$job"}[1m])))`, 0},
	}
	for _, tt := range tests {
		if got := unfilteredSelectors(tt.expr); len(got) != tt.want {
			t.Errorf("unfilteredSelectors(%q) = %q, want %d of them", tt.expr, got, tt.want)
		}
	}
}
