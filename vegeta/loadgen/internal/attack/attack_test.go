package attack

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// line encodes one vegeta result as `vegeta encode -to json` does.
func line(t *testing.T, seq int, code int, latency time.Duration, errText, body string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"attack": "", "seq": seq, "code": code,
		"timestamp": t0.Add(time.Duration(seq) * 10 * time.Millisecond),
		"latency":   int64(latency), "bytes_out": 100, "bytes_in": len(body),
		"error": errText, "body": []byte(body), "method": "POST",
		"url": "http://127.0.0.1:8080/v1/transactions", "headers": map[string][]string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestSummarizeSingle(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	// 100 requests, latencies 1..100 ms: 97 created, 1 replayed, 1 conflict,
	// 1 timeout.
	for i := range 100 {
		code, errText := 201, ""
		switch i {
		case 10:
			code = 200
		case 20:
			code = 409
		case 30:
			code, errText = 0, "Post \"http://127.0.0.1:8080/v1/transactions\": context deadline exceeded"
		}
		in.WriteString(line(t, i, code, time.Duration(i+1)*time.Millisecond, errText, ""))
	}
	s, err := Summarize(strings.NewReader(in.String()), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{
		Requests:     100,
		Codes:        map[int]int64{201: 97, 200: 1, 409: 1, 0: 1},
		Errors:       map[string]int64{"Post \"http://127.0.0.1:8080/v1/transactions\": context deadline exceeded": 1},
		Transactions: 100,
		Accepted:     98,
		ErrorRatio:   0.02,
		Latency:      Latency{P50: 50, P90: 90, P95: 95, P99: 99, Max: 100, Mean: 50.5},
		Start:        t0,
		End:          t0.Add(990*time.Millisecond + 100*time.Millisecond),
		// 99 requests after the first, over 990 ms.
		Rate:              100,
		AcceptedPerSecond: 89.9, // 98 over 1.09 s
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSummarizeBatch(t *testing.T) {
	t.Parallel()
	ok := `{"results":[{"status":201,"transaction":{}},{"status":200,"transaction":{}},{"status":422,"problem":{}}]}`
	in := line(t, 0, 200, 5*time.Millisecond, "", ok) +
		line(t, 1, 200, 7*time.Millisecond, "", ok) +
		line(t, 2, 503, 9*time.Millisecond, "", `{"title":"Unavailable"}`)
	s, err := Summarize(strings.NewReader(in), 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 3 || s.Transactions != 9 || s.Accepted != 4 {
		t.Errorf("requests %d, transactions %d, accepted %d; want 3, 9, 4", s.Requests, s.Transactions, s.Accepted)
	}
	if want := 5.0 / 9; s.ErrorRatio != want {
		t.Errorf("error ratio %v, want %v", s.ErrorRatio, want)
	}
}

func TestSummarizeBatchWithoutBody(t *testing.T) {
	t.Parallel()
	in := line(t, 0, 200, time.Millisecond, "", "")
	if _, err := Summarize(strings.NewReader(in), 10); !errors.Is(err, ErrNoBody) {
		t.Errorf("error %v, want one wrapping ErrNoBody", err)
	}
	cut := line(t, 0, 200, time.Millisecond, "", `{"results":[{"status":201},{"sta`)
	if _, err := Summarize(strings.NewReader(cut), 10); !errors.Is(err, ErrNoBody) {
		t.Errorf("cut body: error %v, want one wrapping ErrNoBody", err)
	}
}

func TestSummarizeRejectsGarbage(t *testing.T) {
	t.Parallel()
	if _, err := Summarize(strings.NewReader("not json\n"), 0); err == nil {
		t.Error("Summarize accepted a line that is not a result")
	}
}

func TestSummarizeEmpty(t *testing.T) {
	t.Parallel()
	s, err := Summarize(strings.NewReader(""), 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 0 || s.ErrorRatio != 0 {
		t.Errorf("empty: %+v", s)
	}
}

func TestWriteShell(t *testing.T) {
	t.Parallel()
	s := Summary{
		Requests: 3, Transactions: 3, Accepted: 2, ErrorRatio: 1.0 / 3,
		Codes:   map[int]int64{201: 2, 0: 1},
		Latency: Latency{P50: 1.5, P90: 2, P99: 3.25, Max: 4},
		Start:   t0, End: t0.Add(1500 * time.Millisecond), Rate: 2, AcceptedPerSecond: 1.3,
	}
	var b strings.Builder
	if err := s.WriteShell(&b); err != nil {
		t.Fatal(err)
	}
	want := `requests=3
transactions=3
accepted=2
error_ratio=0.333333
p50_ms=1.500
p90_ms=2.000
p99_ms=3.250
max_ms=4.000
rate=2.0
accepted_per_second=1.3
start=2025-01-02T03:04:05Z
end=2025-01-02T03:04:06.5Z
codes=0:1,201:2
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
