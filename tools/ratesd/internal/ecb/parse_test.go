package ecb

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// dump is a table as date → code → rate text, for comparing.
func dump(t *Table) map[string]map[string]string {
	out := make(map[string]map[string]string, len(t.days))
	for _, d := range t.days {
		m := make(map[string]string, len(d.rates))
		for c, v := range d.rates {
			m[c] = v.String()
		}
		out[d.Date.Format(time.DateOnly)] = m
	}
	return out
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// histWant is what testdata/hist.csv and hist-reordered.csv hold.
var histWant = map[string]map[string]string{
	"2024-09-13": {"USD": "1.1081", "JPY": "156.17", "GBP": "0.84475"},
	"2024-09-12": {"USD": "1.1016", "JPY": "157.02", "GBP": "0.8446"},
	"2024-09-10": {"USD": "1.1031", "JPY": "157.81", "GBP": "0.84265"},
	"1999-01-04": {"USD": "1.1789", "JPY": "133.73", "GBP": "0.7111", "CYP": "0.58231"},
}

func TestParseFiles(t *testing.T) {
	tests := []struct {
		file           string
		want           map[string]map[string]string
		wantCurrencies []string
	}{
		{file: "hist.csv", want: histWant, wantCurrencies: []string{"CYP", "EUR", "GBP", "JPY", "USD"}},
		{file: "hist-reordered.csv", want: histWant, wantCurrencies: []string{"CYP", "EUR", "GBP", "JPY", "USD"}},
		{
			file: "daily.xml",
			want: map[string]map[string]string{
				"2025-05-09": {"USD": "1.1252", "JPY": "163.36", "GBP": "0.8477", "CHF": "0.9353"},
			},
			wantCurrencies: []string{"CHF", "EUR", "GBP", "JPY", "USD"},
		},
		{
			file: "hist-90d.xml",
			want: map[string]map[string]string{
				"2024-09-13": {"USD": "1.1081", "JPY": "156.17", "GBP": "0.84475"},
				"2024-09-12": {"USD": "1.1016", "JPY": "157.02", "GBP": "0.8446"},
				"2024-09-10": {"USD": "1.1031", "JPY": "157.81", "GBP": "0.84265"},
			},
			wantCurrencies: []string{"EUR", "GBP", "JPY", "USD"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			table, err := Parse(bytes.NewReader(readFixture(t, tt.file)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, dump(table)); diff != "" {
				t.Errorf("table (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCurrencies, table.Currencies()); diff != "" {
				t.Errorf("currencies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDailyCSV(t *testing.T) {
	table, err := Parse(bytes.NewReader(readFixture(t, "daily.csv")))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := table.Latest().Date, time.Date(2025, 5, 9, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("date = %s, want %s", got, want)
	}
	if got, want := len(table.Currencies()), 31; got != want {
		t.Errorf("currencies = %d, want %d", got, want)
	}
	// Trailing zeros as written are kept in value, not necessarily in text.
	if v, _ := table.Latest().PerEUR("SEK"); v.String() != "10.92" {
		t.Errorf("SEK = %s, want 10.92", v)
	}
}

func TestParseZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("eurofxref-hist.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(readFixture(t, "hist.csv")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	table, err := Parse(&buf)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(histWant, dump(table)); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "empty", in: "", wantErr: "neither"},
		{name: "json", in: `{"rates":{}}`, wantErr: "neither"},
		{name: "header only", in: "Date,USD,\n", wantErr: "no business days"},
		{name: "bad header", in: "Day,USD,\n2024-09-10,1.1,\n", wantErr: "neither"},
		{name: "bad code in header", in: "Date,US Dollar,\n2024-09-10,1.1,\n", wantErr: "not a currency code"},
		{name: "duplicate column", in: "Date,USD,USD,\n2024-09-10,1.1,1.2,\n", wantErr: "appears twice"},
		{name: "bad date", in: "Date,USD,\n2024-13-10,1.1,\n", wantErr: "line 2"},
		{name: "value beyond header", in: "Date,USD,\n2024-09-10,1,1,\n", wantErr: "no currency in the header"},
		{name: "not a number", in: "Date,USD,\n2024-09-10,abc,\n", wantErr: `rate "abc" is not a number`},
		{name: "zero rate", in: "Date,USD,\n2024-09-10,0,\n", wantErr: "not positive"},
		{name: "negative rate", in: "Date,USD,\n2024-09-10,-1.1,\n", wantErr: "not positive"},
		{name: "duplicate date", in: "Date,USD,\n2024-09-10,1.1,\n2024-09-10,1.2,\n", wantErr: "appears twice"},
		{name: "xml bad time", in: `<Envelope><Cube><Cube time="10.09.2024"><Cube currency="USD" rate="1.1"/></Cube></Cube></Envelope>`, wantErr: "not YYYY-MM-DD"},
		{name: "xml bad rate", in: `<Envelope><Cube><Cube time="2024-09-10"><Cube currency="USD" rate="x"/></Cube></Cube></Envelope>`, wantErr: "not a number"},
		{name: "xml no days", in: `<Envelope><Cube></Cube></Envelope>`, wantErr: "no business days"},
		{name: "xml broken", in: `<Envelope><Cube>`, wantErr: "read XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	hist := readFixture(t, "hist.csv")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/eurofxref-hist.csv" {
			http.NotFound(w, r)
			return
		}
		if _, err := w.Write(hist); err != nil {
			t.Errorf("serve the fixture: %v", err)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name     string
		source   string
		wantDays int
		wantErr  string
	}{
		{name: "built-in", source: "", wantDays: 15},
		{name: "path", source: filepath.Join("testdata", "hist-90d.xml"), wantDays: 3},
		{name: "url", source: srv.URL + "/eurofxref-hist.csv", wantDays: 4},
		{name: "missing path", source: filepath.Join("testdata", "nope.csv"), wantErr: "open rates file"},
		{name: "url 404", source: srv.URL + "/nope.csv", wantErr: "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := Load(context.Background(), tt.source, srv.Client())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := table.Len(); got != tt.wantDays {
				t.Errorf("days = %d, want %d", got, tt.wantDays)
			}
		})
	}
}

func TestBuiltin(t *testing.T) {
	table, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	first, latest := table.First().Date.Format(time.DateOnly), table.Latest().Date.Format(time.DateOnly)
	if first != "2024-09-02" || latest != "2024-09-20" {
		t.Errorf("range = %s..%s, want 2024-09-02..2024-09-20", first, latest)
	}
	day, err := table.On(time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	// As the ECB published it for 2024-09-11.
	if v, _ := day.PerEUR("USD"); v.String() != "1.1043" {
		t.Errorf("USD on 2024-09-11 = %s, want 1.1043", v)
	}
}

// TestSharedHistory parses the ECB's full history when the project's shared
// data is present beside the checkout. It is optional data, not a service:
// without it the subtest is simply not run.
func TestSharedHistory(t *testing.T) {
	const path = "/work/shared/data/ecb/eurofxref-hist.csv"
	if _, err := os.Stat(path); err != nil {
		t.Logf("optional data %s not present: %v", path, err)
		return
	}
	t.Run("eurofxref-hist.csv", func(t *testing.T) {
		table, err := Load(context.Background(), path, nil)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got := table.First().Date.Format(time.DateOnly); got != "1999-01-04" {
			t.Errorf("first day = %s, want 1999-01-04", got)
		}
		if table.Len() < 6000 {
			t.Errorf("days = %d, want the full history", table.Len())
		}
		day, err := table.On(time.Date(2024, 9, 14, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := day.PerEUR("USD"); day.Date.Format(time.DateOnly) != "2024-09-13" || v.String() != "1.1081" {
			t.Errorf("2024-09-14 = %s USD %s, want 2024-09-13 USD 1.1081", day.Date.Format(time.DateOnly), v)
		}
		old, err := table.On(time.Date(1999, 1, 4, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := old.PerEUR("CYP"); !ok || v.String() != "0.58231" {
			t.Errorf("CYP on 1999-01-04 = %s, %v, want 0.58231", v, ok)
		}
	})
}
