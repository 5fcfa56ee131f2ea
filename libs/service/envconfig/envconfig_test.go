package envconfig

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEnvReadsAndReportsEveryBadVariable(t *testing.T) {
	vars := map[string]string{
		"GOOD_URL": "postgres://u:p@h/db", "BAD_URL": "mysql://h", "GOOD_INT": "7", "BAD_INT": "7x",
		"HIGH_INT": "100", "GOOD_DUR": "250ms", "BAD_DUR": "-1s", "GOOD_DURS": "5s, 1m", "BAD_DURS": "5s,x",
	}
	e := NewEnv(func(k string) string { return vars[k] })
	if got := e.URL("GOOD_URL", "", "postgres"); got != vars["GOOD_URL"] {
		t.Errorf("URL = %q", got)
	}
	if got := e.Int("GOOD_INT", 1, 1, 10); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if got := e.Duration("GOOD_DUR", time.Second); got != 250*time.Millisecond {
		t.Errorf("Duration = %v", got)
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, time.Minute}, e.Durations("GOOD_DURS", nil)); diff != "" {
		t.Errorf("Durations (-want +got):\n%s", diff)
	}
	if got := e.String("UNSET", "def"); got != "def" {
		t.Errorf("String default = %q", got)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("good variables reported: %v", err)
	}
	e.URL("BAD_URL", "", "postgres")
	e.Int("BAD_INT", 1, 1, 10)
	e.Int("HIGH_INT", 1, 1, 10)
	e.Duration("BAD_DUR", time.Second)
	e.Durations("BAD_DURS", nil)
	err := e.Err()
	if err == nil {
		t.Fatal("bad variables not reported")
	}
	for _, name := range []string{"BAD_URL", "BAD_INT", "HIGH_INT", "BAD_DUR", "BAD_DURS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("amqp://guest:secret@mq:5672/"); strings.Contains(got, "secret") || !strings.Contains(got, "guest:xxxxx@mq") {
		t.Errorf("Redact = %q", got)
	}
}
