package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/tools/ratesd/internal/ecb"
	"github.com/txpersister/txpersister/tools/ratesd/internal/httpapi"
)

// fixture is a few days of real ECB rates; 2024-09-11 is left out to stand
// for a holiday.
const fixture = `Date,USD,JPY,GBP,CYP,
2024-09-13,1.1081,156.17,0.84475,N/A,
2024-09-12,1.1016,157.02,0.8446,N/A,
2024-09-10,1.1031,157.81,0.84265,N/A,
2024-09-09,1.1043,158.53,0.84365,N/A,
`

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	table, err := ecb.ParseCSV(strings.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(httpapi.New(func() *ecb.Table { return table }, nil, log))
	t.Cleanup(srv.Close)
	return srv
}

// get returns the status and body of GET srv.URL+path, checking the body
// is JSON.
func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type = %q, want application/json", path, ct)
	}
	if !json.Valid(body) {
		t.Errorf("GET %s: body is not JSON: %s", path, body)
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func TestRates(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{
			name:       "latest, EUR base, all symbols",
			path:       "/v1/latest",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"EUR","date":"2024-09-13","rates":{"GBP":0.84475,"JPY":156.17,"USD":1.1081}}`,
		},
		{
			name:       "date, EUR base",
			path:       "/v1/2024-09-10?symbols=USD",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`,
		},
		{
			name:       "cross rate to EUR",
			path:       "/v1/2024-09-10?base=USD&symbols=EUR",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9065361255}}`,
		},
		{
			name:       "cross rate between two non-EUR, several symbols",
			path:       "/v1/2024-09-10?base=GBP&symbols=JPY,USD",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"GBP","date":"2024-09-10","rates":{"JPY":187.2782294,"USD":1.309084436}}`,
		},
		{
			name:       "weekend answers friday",
			path:       "/v1/2024-09-14?base=USD&symbols=EUR",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"USD","date":"2024-09-13","rates":{"EUR":0.9024456277}}`,
		},
		{
			name:       "holiday answers previous business day",
			path:       "/v1/2024-09-11?symbols=USD",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`,
		},
		{
			name:       "future date answers latest",
			path:       "/v1/2030-01-01?symbols=USD",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"EUR","date":"2024-09-13","rates":{"USD":1.1081}}`,
		},
		{
			name:       "from and to aliases, lower case",
			path:       "/v1/2024-09-10?from=usd&to=eur",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9065361255}}`,
		},
		{
			name:       "amount",
			path:       "/v1/2024-09-10?from=USD&to=EUR&amount=100.50",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":100.5,"base":"USD","date":"2024-09-10","rates":{"EUR":91.10688061}}`,
		},
		{
			name:       "before first day",
			path:       "/v1/2024-09-08",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"message":"not found"}`,
		},
		{
			name:       "unknown base",
			path:       "/v1/2024-09-10?base=ABC",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"message":"not found"}`,
		},
		{
			name:       "unknown symbol",
			path:       "/v1/latest?symbols=USD,ABC",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"message":"not found"}`,
		},
		{
			name:       "currency with only N/A",
			path:       "/v1/2024-09-10?base=CYP",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"message":"not found"}`,
		},
		{
			name:       "malformed code",
			path:       "/v1/latest?base=US",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"message":"not found"}`,
		},
		{
			name:       "malformed date",
			path:       "/v1/2024-13-01",
			wantStatus: http.StatusUnprocessableEntity,
			wantBody:   `{"message":"invalid date: want YYYY-MM-DD or latest"}`,
		},
		{
			name:       "bad amount",
			path:       "/v1/latest?amount=-5",
			wantStatus: http.StatusUnprocessableEntity,
			wantBody:   `{"message":"invalid amount: want a positive number"}`,
		},
		{
			name:       "base and from disagree",
			path:       "/v1/latest?base=USD&from=GBP",
			wantStatus: http.StatusUnprocessableEntity,
			wantBody:   `{"message":"base and from disagree"}`,
		},
		{
			// As Frankfurter answers a path it does not serve: with a
			// status, unlike its answer for a missing rate.
			name:       "unknown path",
			path:       "/v2/latest",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"status":404,"message":"not found"}`,
		},
		{
			name:       "a RATES_API_URL without /v1",
			path:       "/2024-09-10?base=EUR&symbols=USD",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"status":404,"message":"not found"}`,
		},
		{
			name:       "the quotes of EUR, exactly as the ECB published them",
			path:       "/v1/2024-09-12?base=EUR&symbols=USD,JPY",
			wantStatus: http.StatusOK,
			wantBody:   `{"amount":1.0,"base":"EUR","date":"2024-09-12","rates":{"JPY":157.02,"USD":1.1016}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, srv, tt.path)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestV4Latest(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{
			name:       "USD base includes itself and EUR",
			path:       "/v4/latest/USD",
			wantStatus: http.StatusOK,
			wantBody:   `{"base":"USD","date":"2024-09-13","time_last_updated":1726185600,"rates":{"EUR":0.9024456277,"GBP":0.762340944,"JPY":140.9349337,"USD":1}}`,
		},
		{
			name:       "unknown base",
			path:       "/v4/latest/ABC",
			wantStatus: http.StatusNotFound,
			wantBody:   `{"result":"error","error-type":"unsupported-code"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, srv, tt.path)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCurrenciesAndHealth(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		path     string
		wantBody string
	}{
		{
			path:     "/v1/currencies",
			wantBody: `{"EUR":"Euro","GBP":"British Pound","JPY":"Japanese Yen","USD":"United States Dollar"}`,
		},
		{
			path:     "/healthz",
			wantBody: `{"status":"ok","days":4,"first":"2024-09-09","latest":"2024-09-13"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := get(t, srv, tt.path)
			if status != http.StatusOK {
				t.Errorf("status = %d, want 200", status)
			}
			if diff := cmp.Diff(tt.wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}
