// Package attack sums up a vegeta attack from its results, as
// `vegeta encode -to json` writes them: how many requests were sent and
// answered, how many transactions the api accepted (counting each result of
// a batch answer), the error ratio and the request latencies. The load
// scripts read it instead of parsing vegeta's reports, which know nothing of
// batches.
package attack

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// result is the part of a vegeta result this package reads.
type result struct {
	Code      int           `json:"code"`
	Timestamp time.Time     `json:"timestamp"`
	Latency   time.Duration `json:"latency"`
	Error     string        `json:"error"`
	Body      []byte        `json:"body"`
}

// batchAnswer is the part of a POST /v1/transactions/batch answer read here.
type batchAnswer struct {
	Results []struct {
		Status int `json:"status"`
	} `json:"results"`
}

// ErrNoBody is returned in batch mode for a 200 answer whose body vegeta did
// not keep (vegeta attack -max-body must be -1 for batch attacks).
var ErrNoBody = errors.New("a batch answer's body is missing or cut short: attack with -max-body=-1")

// Latency holds request latency percentiles, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summary sums up an attack.
type Summary struct {
	// Requests counts the results.
	Requests int64 `json:"requests"`
	// Codes counts the results by status code; 0 is a request that got no
	// answer (a timeout, a refused connection).
	Codes map[int]int64 `json:"codes"`
	// Errors counts the results by error text, the most frequent first in
	// WriteText.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Transactions counts the transactions sent: Requests, or Requests
	// times the batch size.
	Transactions int64 `json:"transactions"`
	// Accepted counts the transactions answered 201 (created) or 200
	// (already there): for a batch, its results with those statuses.
	Accepted int64 `json:"accepted"`
	// ErrorRatio is the share of the transactions sent that were not
	// accepted.
	ErrorRatio float64 `json:"error_ratio"`
	// Latency is the request latency; with batches, one request's.
	Latency Latency `json:"latency"`
	// Start is the first request's time, End the last answer's.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Rate is the requests sent a second, as vegeta measures it.
	Rate float64 `json:"rate"`
	// AcceptedPerSecond is Accepted over Start to End.
	AcceptedPerSecond float64 `json:"accepted_per_second"`
}

// Summarize reads vegeta JSON results, one a line, from r. batch is the
// number of transactions per request, 0 for single requests.
func Summarize(r io.Reader, batch int) (Summary, error) {
	s := Summary{Codes: map[int]int64{}}
	var latencies []time.Duration
	var total time.Duration
	var last time.Time // the last request's time
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var res result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return Summary{}, fmt.Errorf("result %d: %w", line, err)
		}
		s.Requests++
		s.Codes[res.Code]++
		if res.Error != "" {
			if s.Errors == nil {
				s.Errors = map[string]int64{}
			}
			s.Errors[res.Error]++
		}
		latencies = append(latencies, res.Latency)
		total += res.Latency
		if s.Start.IsZero() || res.Timestamp.Before(s.Start) {
			s.Start = res.Timestamp
		}
		if res.Timestamp.After(last) {
			last = res.Timestamp
		}
		if end := res.Timestamp.Add(res.Latency); end.After(s.End) {
			s.End = end
		}
		accepted, err := acceptedIn(res, batch)
		if err != nil {
			return Summary{}, fmt.Errorf("result %d: %w", line, err)
		}
		s.Accepted += accepted
	}
	if err := sc.Err(); err != nil {
		return Summary{}, fmt.Errorf("read results: %w", err)
	}
	s.Transactions = s.Requests * int64(max(batch, 1))
	if s.Transactions > 0 {
		s.ErrorRatio = float64(s.Transactions-s.Accepted) / float64(s.Transactions)
	}
	if n := len(latencies); n > 0 {
		sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
		s.Latency = Latency{
			P50:  msOf(percentile(latencies, 0.50)),
			P90:  msOf(percentile(latencies, 0.90)),
			P95:  msOf(percentile(latencies, 0.95)),
			P99:  msOf(percentile(latencies, 0.99)),
			Max:  msOf(latencies[n-1]),
			Mean: msOf(total / time.Duration(n)),
		}
	}
	// vegeta's rate: the requests after the first over the time they took
	// to send.
	if d := last.Sub(s.Start); s.Requests > 1 && d > 0 {
		s.Rate = round1(float64(s.Requests-1) / d.Seconds())
	}
	if d := s.End.Sub(s.Start); d > 0 {
		s.AcceptedPerSecond = round1(float64(s.Accepted) / d.Seconds())
	}
	return s, nil
}

// acceptedIn counts the transactions res says the api accepted.
func acceptedIn(res result, batch int) (int64, error) {
	if batch == 0 {
		if res.Code == 201 || res.Code == 200 {
			return 1, nil
		}
		return 0, nil
	}
	if res.Code != 200 {
		return 0, nil
	}
	var a batchAnswer
	if err := json.Unmarshal(res.Body, &a); err != nil || len(a.Results) == 0 {
		return 0, ErrNoBody
	}
	var n int64
	for _, r := range a.Results {
		if r.Status == 201 || r.Status == 200 {
			n++
		}
	}
	return n, nil
}

// percentile returns the nearest-rank percentile p of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func msOf(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// WriteShell writes s as name=value lines a shell script reads safely
// (values hold no spaces or quotes): requests, accepted, transactions,
// error_ratio, p50_ms, p99_ms, max_ms, rate, accepted_per_second, start and
// end (RFC 3339 with nanoseconds), codes (such as 201:2999,0:1).
func (s Summary) WriteShell(w io.Writer) error {
	codes := make([]int, 0, len(s.Codes))
	for c := range s.Codes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var cs []string
	for _, c := range codes {
		cs = append(cs, fmt.Sprintf("%d:%d", c, s.Codes[c]))
	}
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	kv("requests", strconv.FormatInt(s.Requests, 10))
	kv("transactions", strconv.FormatInt(s.Transactions, 10))
	kv("accepted", strconv.FormatInt(s.Accepted, 10))
	kv("error_ratio", strconv.FormatFloat(s.ErrorRatio, 'f', 6, 64))
	kv("p50_ms", strconv.FormatFloat(s.Latency.P50, 'f', 3, 64))
	kv("p90_ms", strconv.FormatFloat(s.Latency.P90, 'f', 3, 64))
	kv("p99_ms", strconv.FormatFloat(s.Latency.P99, 'f', 3, 64))
	kv("max_ms", strconv.FormatFloat(s.Latency.Max, 'f', 3, 64))
	kv("rate", strconv.FormatFloat(s.Rate, 'f', 1, 64))
	kv("accepted_per_second", strconv.FormatFloat(s.AcceptedPerSecond, 'f', 1, 64))
	kv("start", s.Start.UTC().Format(time.RFC3339Nano))
	kv("end", s.End.UTC().Format(time.RFC3339Nano))
	kv("codes", strings.Join(cs, ","))
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes s for a person to read.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "requests %d at %.1f/s, transactions %d, accepted %d (%.1f/s), error ratio %.4f\n",
		s.Requests, s.Rate, s.Transactions, s.Accepted, s.AcceptedPerSecond, s.ErrorRatio)
	fmt.Fprintf(&b, "request latency: mean %.2fms  p50 %.2fms  p90 %.2fms  p95 %.2fms  p99 %.2fms  max %.2fms\n",
		s.Latency.Mean, s.Latency.P50, s.Latency.P90, s.Latency.P95, s.Latency.P99, s.Latency.Max)
	codes := make([]int, 0, len(s.Codes))
	for c := range s.Codes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	b.WriteString("status codes:")
	for _, c := range codes {
		fmt.Fprintf(&b, " %d×%d", c, s.Codes[c])
	}
	b.WriteString("\n")
	type count struct {
		text string
		n    int64
	}
	var errs []count
	for e, n := range s.Errors {
		errs = append(errs, count{e, n})
	}
	sort.Slice(errs, func(i, j int) bool {
		if errs[i].n != errs[j].n {
			return errs[i].n > errs[j].n
		}
		return errs[i].text < errs[j].text
	})
	for i, e := range errs {
		if i == 5 {
			fmt.Fprintf(&b, "  ... and %d other errors\n", len(errs)-5)
			break
		}
		fmt.Fprintf(&b, "  %d× %s\n", e.n, e.text)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
