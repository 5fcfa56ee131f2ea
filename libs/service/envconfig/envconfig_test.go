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
	tests := []struct {
		name, raw, want string
	}{
		{
			name: "user info password",
			raw:  "postgres://u:secret@h:5432/db?sslmode=disable",
			want: "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		},
		{
			name: "query password",
			raw:  "postgres://u@h/db?password=secret&sslmode=disable",
			want: "postgres://u@h/db?password=xxxxx&sslmode=disable",
		},
		{
			name: "query password in mixed case",
			raw:  "postgresql://h/db?PassWord=secret",
			want: "postgresql://h/db?PassWord=xxxxx",
		},
		{
			name: "query name percent-encoded",
			raw:  "postgres://h/db?pass%77ord=secret",
			want: "postgres://h/db?pass%77ord=xxxxx",
		},
		{
			name: "amqp user info",
			raw:  "amqps://guest:secret@mq:5671/vh%2F?heartbeat=10",
			want: "amqps://guest:xxxxx@mq:5671/vh%2F?heartbeat=10",
		},
		{
			name: "several query parameters, order kept, paths kept",
			raw:  "postgres://u:p1@h/db?sslmode=verify-full&sslpassword=s2&passfile=/run/pgpass&sslkey=/run/k.pem&application_name=api&auth_token=s3&client_secret=s4&KEY=s5&apikey=s6&api_key=s7&connect_timeout=5",
			want: "postgres://u:xxxxx@h/db?sslmode=verify-full&sslpassword=xxxxx&passfile=/run/pgpass&sslkey=/run/k.pem&application_name=api&auth_token=xxxxx&client_secret=xxxxx&KEY=xxxxx&apikey=xxxxx&api_key=xxxxx&connect_timeout=5",
		},
		{
			name: "rates API key",
			raw:  "https://rates.example/v1?access_key=s1&base=EUR",
			want: "https://rates.example/v1?access_key=xxxxx&base=EUR",
		},
		{
			name: "no secrets",
			raw:  "postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable&application_name=api",
			want: "postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable&application_name=api",
		},
		{name: "unparseable URL", raw: "postgres://u:p@h:port/db", want: "(unparseable URL)"},
		{
			name: "keyword/value",
			raw:  "host=h user=u password=secret dbname=x",
			want: "host=h user=u password=xxxxx dbname=x",
		},
		{
			name: "keyword/value quoted, spaced and escaped",
			raw:  "host=h password = 'a b\\' c' sslpassword=s\\ 2 dbname='x y' Token='' sslkey=/run/k.pem",
			want: "host=h password = xxxxx sslpassword=xxxxx dbname='x y' Token=xxxxx sslkey=/run/k.pem",
		},
		{
			name: "keyword/value with :// in a value",
			raw:  "host=h password=secret options=a://b",
			want: "host=h password=xxxxx options=a://b",
		},
		{name: "keyword/value without secrets", raw: " host=/tmp\tdbname=x ", want: " host=/tmp\tdbname=x "},
		{name: "empty", raw: "", want: ""},
		{name: "keyword/value unclosed quote", raw: "host=h password='secret", want: "(unparseable connection string)"},
		{name: "keyword/value without =", raw: "host=h secret", want: "(unparseable connection string)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.raw); got != tt.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestURLsReadsAListAndNamesTheBadItem(t *testing.T) {
	vars := map[string]string{
		"ONE":   "amqp://u:p@a:5672/",
		"THREE": "amqp://u:p@a:5672/v, amqps://u:p@b:5671/v,,amqp://c/v",
		"BAD":   "amqp://a/,http://u:secret@b/",
		"EMPTY": " , ",
	}
	e := NewEnv(func(k string) string { return vars[k] })
	for _, name := range []string{"ONE", "THREE"} {
		if got := e.URLs(name, "", "amqp", "amqps"); got != vars[name] {
			t.Errorf("URLs(%s) = %q, want it as written", name, got)
		}
	}
	if got := e.URLs("UNSET", "amqp://d/", "amqp"); got != "amqp://d/" {
		t.Errorf("URLs default = %q", got)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("good lists reported: %v", err)
	}
	if diff := cmp.Diff([]string{"amqp://u:p@a:5672/v", "amqps://u:p@b:5671/v", "amqp://c/v"}, SplitList(vars["THREE"])); diff != "" {
		t.Errorf("SplitList (-want +got):\n%s", diff)
	}

	e.URLs("BAD", "", "amqp")
	e.URLs("EMPTY", "", "amqp")
	err := e.Err()
	if err == nil {
		t.Fatal("bad lists not reported")
	}
	for _, want := range []string{`BAD: URL 2 of 2: scheme "http"`, "EMPTY: no URL in the list"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error quotes a password: %v", err)
	}
}

func TestRedactListMasksEveryItem(t *testing.T) {
	got := RedactList("amqp://u:p1@a:5672/v, amqps://u:p2@b/v?token=t")
	if want := "amqp://u:xxxxx@a:5672/v,amqps://u:xxxxx@b/v?token=xxxxx"; got != want {
		t.Errorf("RedactList = %q, want %q", got, want)
	}
}
