package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHostileInput sends the api what a careless or hostile client might:
// broken and ambiguous JSON, numbers no float holds, invalid UTF-8, bodies
// and headers beyond the limits, headers and bodies trickled a byte at a
// time, and a burst of huge bodies. Every one must get a 4xx or a closed
// connection: never a 5xx, a panic, or memory that grows with what the
// client sends.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	addr := strings.TrimPrefix(s.api, "http://")

	t.Run("group", func(t *testing.T) {
		t.Run("bodies", func(t *testing.T) { hostileBodies(t, s) })
		t.Run("duplicate keys store nothing", func(t *testing.T) {
			t.Parallel()
			for i, dup := range []string{`"amount": 1, "amount": 1000`, `"amount": 1000, "amount": 1`, `"amount": 1, "amount": 1`} {
				id := fmt.Sprintf("dup-%d", i)
				code, p := s.post("/v1/transactions", `{"transaction_id": "`+id+`", `+dup+`, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z"}`)
				if code != http.StatusUnprocessableEntity || !hasFieldError(p, "amount", "duplicate_field") {
					t.Errorf("%s: %d %v, want 422 with duplicate_field on amount", dup, code, p)
				}
				if code, res := s.get("/v1/transactions/" + id); code != http.StatusNotFound {
					t.Errorf("%s: stored anyway: %d %v", dup, code, res)
				}
			}
		})
		t.Run("headers over MaxHeaderBytes", func(t *testing.T) {
			t.Parallel()
			// MaxHeaderBytes is 16 KiB; net/http allows 4 KiB of slack above it.
			for _, tt := range []struct {
				size int
				want int
			}{{8 << 10, http.StatusCreated}, {32 << 10, http.StatusRequestHeaderFieldsTooLarge}, {1 << 20, http.StatusRequestHeaderFieldsTooLarge}} {
				req, err := http.NewRequest(http.MethodPost, s.api+"/v1/transactions", strings.NewReader(body(fmt.Sprintf("hdr-%d", tt.size), "1", "USD", "2024-09-11T00:00:00Z")))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Padding", strings.Repeat("a", tt.size))
				code, err := status(req)
				if err != nil && tt.want == http.StatusRequestHeaderFieldsTooLarge && isClosed(err) {
					continue // a closed connection is an answer too
				}
				if err != nil || code != tt.want {
					t.Errorf("header of %d bytes: %d %v, want %d", tt.size, code, err, tt.want)
				}
			}
		})
		t.Run("headers sent slowly", func(t *testing.T) {
			t.Parallel()
			// The api's ReadHeaderTimeout is 5 s: a client that never
			// finishes its headers is cut off then, however steadily it
			// trickles.
			closed, answer, took := trickle(t, addr, "POST /v1/transactions HTTP/1.1\r\nHost: api\r\n", func(i int) string { return fmt.Sprintf("X-%d: a\r\n", i) }, 60*time.Second)
			if !closed {
				t.Fatalf("connection still open after %s of trickled headers", took)
			}
			t.Logf("connection with trickled headers closed after %s; answer %q", took.Round(100*time.Millisecond), answer)
		})
		t.Run("body sent slowly", func(t *testing.T) {
			t.Parallel()
			// The api's ReadTimeout is 15 s, for headers and body together.
			head := "POST /v1/transactions HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
			closed, answer, took := trickle(t, addr, head, func(int) string { return " " }, 60*time.Second)
			if !closed {
				t.Fatalf("connection still open after %s of trickled body", took)
			}
			t.Logf("connection with a trickled body closed after %s; answer %q", took.Round(100*time.Millisecond), answer)
		})
		t.Run("burst of huge bodies", func(t *testing.T) {
			t.Parallel()
			hugeBodies(t, s)
		})
	})

	for _, route := range []string{"/v1/transactions", "/v1/transactions/batch", "/transaction"} {
		name := fmt.Sprintf(`txpersister_http_requests_total{route=%q,method="POST",code="5xx"}`, route)
		if n := metric(t, s.apiAdmin, name); n != 0 {
			t.Errorf("%s = %v, want 0", name, n)
		}
	}
	if b, err := os.ReadFile(s.logs["api"]); err != nil {
		t.Error(err)
	} else if bytes.Contains(b, []byte("panic")) {
		t.Errorf("the api's log mentions a panic:\n%s", tail(b, 40))
	}
}

// hostileBodies posts bodies that are not, or not unambiguously, valid
// transactions.
func hostileBodies(t *testing.T, s *stack) {
	valid := func(amount string) string { return body("hostile", amount, "USD", "2024-09-11T00:00:00Z") }
	tests := []struct {
		name, path, contentType, body string
		want                          int
		// wantField and wantCode, when set, name a field error the 422
		// must carry.
		wantField, wantCode string
	}{
		{name: "empty", body: ``, want: 400},
		{name: "not JSON", body: `hello`, want: 400},
		{name: "truncated", body: `{"transaction_id": "x",`, want: 400},
		{name: "trailing comma", body: `{"transaction_id": "x",}`, want: 400},
		{name: "single quotes", body: `{'transaction_id': 'x'}`, want: 400},
		{name: "two objects", body: valid("1") + valid("1"), want: 400},
		{name: "byte order mark", body: "\xef\xbb\xbf" + valid("1"), want: 400},
		{name: "NUL between tokens", body: "{\x00}", want: 400},
		{name: "nested arrays in a field, 30k deep", body: `{"amount": ` + nested("[", "]", 30000) + `}`, want: 400},
		{name: "nested objects in a field, 10.5k deep", body: `{"amount": ` + nested(`{"a":`, "}", 10500) + `}`, want: 400},
		{name: "100k nested arrays", body: nested("[", "]", 100000), want: 413},
		{name: "100k nested arrays, batch", path: "/v1/transactions/batch", body: nested("[", "]", 100000), want: 400},
		{name: "100k nested objects in a batch", path: "/v1/transactions/batch", body: "[" + nested(`{"a":`, "}", 100000) + "]", want: 400},
		{name: "1e400", body: valid("1e400"), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "-1e400", body: valid("-1e400"), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "1e-400", body: valid("1e-400"), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "1e400 as a string", body: valid(`"1e400"`), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "10k-digit integer", body: valid(strings.Repeat("9", 10000)), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "10k-digit fraction", body: valid("0." + strings.Repeat("1", 10000)), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "exponent with 10k digits", body: valid("1e" + strings.Repeat("9", 10000)), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "bare NaN", body: valid("NaN"), want: 400},
		{name: "bare Infinity", body: valid("Infinity"), want: 400},
		{name: "bare -Infinity", body: valid("-Infinity"), want: 400},
		{name: "NaN as a string", body: valid(`"NaN"`), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "Infinity as a string", body: valid(`"Infinity"`), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "-Infinity as a string", body: valid(`"-Infinity"`), want: 422, wantField: "amount", wantCode: "invalid_value"},
		{name: "hex amount", body: valid("0x10"), want: 400},
		{name: "invalid UTF-8 in a value", body: `{"transaction_id": "a` + "\xff\xfe" + `", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z"}`, want: 400},
		{name: "invalid UTF-8 in a key", body: `{"transaction_id": "a", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z", "` + "\xc3\x28" + `": 1}`, want: 400},
		{name: "UTF-8 encoded surrogate", body: `{"transaction_id": "` + "\xed\xa0\x80" + `", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z"}`, want: 400},
		{name: "overlong UTF-8", body: `{"transaction_id": "` + "\xc0\xaf" + `", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z"}`, want: 400},
		{name: "invalid UTF-8 in a batch", path: "/v1/transactions/batch", body: "[" + valid("1") + `, "` + "\xff" + `"]`, want: 400},
		{name: "escaped NUL in an id", body: `{"transaction_id": "a\u0000b", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z"}`, want: 422, wantField: "transaction_id", wantCode: "control_character"},
		{name: "id of 60k characters", body: `{"transaction_id": "` + strings.Repeat("a", 60000) + `", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z"}`, want: 422, wantField: "transaction_id", wantCode: "too_long"},
		{name: "timestamp before year 0 in UTC", body: body("y0", "1", "USD", "0000-01-01T00:00:00+01:00"), want: 422, wantField: "timestamp", wantCode: "invalid_value"},
		// PostgreSQL has no year 0: accepted, it could never be converted.
		{name: "timestamp in year 0", body: body("y0", "1.00", "EUR", "0000-06-15T00:00:00Z"), want: 422, wantField: "timestamp", wantCode: "invalid_value"},
		{name: "body over 64 KiB", body: valid("1") + strings.Repeat(" ", 64<<10), want: 413},
		{name: "batch over 1 MiB", path: "/v1/transactions/batch", body: "[" + valid("1") + strings.Repeat(" ", 1<<20) + "]", want: 413},
		{name: "batch of 1001", path: "/v1/transactions/batch", body: "[" + strings.Repeat(valid("1")+",", 1000) + valid("1") + "]", want: 422},
		{name: "text/plain", contentType: "text/plain", body: valid("1"), want: 415},
		{name: "unparsable content type", contentType: "application/json; ;;=", body: valid("1"), want: 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.path == "" {
				tt.path = "/v1/transactions"
			}
			if tt.contentType == "" {
				tt.contentType = "application/json"
			}
			resp, err := s.client.Post(s.api+tt.path, tt.contentType, strings.NewReader(tt.body))
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, truncated(b))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(b, &p); err != nil || p["status"] != float64(tt.want) || p["title"] == "" {
				t.Errorf("not a problem for %d (%v): %s", tt.want, err, truncated(b))
			}
			if tt.wantField != "" && !hasFieldError(p, tt.wantField, tt.wantCode) {
				t.Errorf("no %s error on %s: %s", tt.wantCode, tt.wantField, truncated(b))
			}
		})
	}
}

// hugeBodies sends a burst of bodies far beyond the limits, some with a
// Content-Length and some chunked, and checks that the api's resident
// memory stays bounded: it reads no more than a limit of any of them.
func hugeBodies(t *testing.T, s *stack) {
	pid := s.pids["api"]
	const size = 16 << 20
	const requests, concurrency = 48, 6
	chunk := bytes.Repeat([]byte(`[[[[[[[[`), size/8)
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	var mu sync.Mutex
	statuses := map[string]int{}
	for i := range requests {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			path := "/v1/transactions"
			if i%2 == 1 {
				path = "/v1/transactions/batch"
			}
			var r io.Reader = bytes.NewReader(chunk)
			if i%4 >= 2 {
				r = struct{ io.Reader }{r} // unknown length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, s.api+path, r)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			code, err := status(req)
			key := strconv.Itoa(code)
			switch {
			case err != nil && isClosed(err):
				key = "closed"
			case err != nil:
				t.Errorf("POST %s: %v", path, err)
			case code != http.StatusRequestEntityTooLarge:
				t.Errorf("POST %s of %d MiB: %d, want 413", path, size>>20, code)
			}
			mu.Lock()
			statuses[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	rss, peak := memory(t, pid)
	t.Logf("%d bodies of %d MiB: answers %v; api VmRSS %d MiB, VmHWM %d MiB", requests, size>>20, statuses, rss>>20, peak>>20)
	const limit = 200 << 20
	if peak > limit {
		t.Errorf("api peak resident memory %d MiB, want below %d MiB", peak>>20, limit>>20)
	}
}

// memory returns the resident and peak resident memory of process pid.
func memory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	if pid == 0 {
		t.Fatal("the stack knows no api pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch {
		case k != "VmRSS" && k != "VmHWM":
		case err != nil:
			t.Fatalf("%s: %v", sc.Text(), err)
		case k == "VmRSS":
			rss = kb << 10
		default:
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		t.Fatalf("no VmRSS or VmHWM in /proc/%d/status", pid)
	}
	return rss, peak
}

// trickle opens a connection, writes head, then writes next(i) every
// 250 ms, and reports whether the server closed the connection before
// limit, the status line it answered before closing ("" for none), and
// when.
func trickle(t *testing.T, addr, head string, next func(i int) string, limit time.Duration) (closed bool, answer string, took time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	answered := make(chan string, 1)
	go func() {
		// Whatever the server sends before closing; "" when it sends nothing.
		b, _ := io.ReadAll(conn)
		answered <- string(b)
	}()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case a := <-answered:
			if a != "" {
				checkSlowAnswer(t, a)
			}
			line, _, _ := strings.Cut(a, "\r\n")
			return true, line, time.Since(start)
		case <-tick.C:
			if time.Since(start) > limit {
				return false, "", time.Since(start)
			}
			// A write error means the server closed its end; the read
			// above reports it.
			_, _ = io.WriteString(conn, next(i))
		}
	}
}

// checkSlowAnswer fails t unless a, what the server wrote before closing a
// slow connection, is a 4xx answer.
func checkSlowAnswer(t *testing.T, a string) {
	t.Helper()
	line, _, _ := strings.Cut(a, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || len(f[1]) != 3 || f[1][0] != '4' {
		t.Errorf("answer to a slow client: %q, want a 4xx or a silent close", truncated([]byte(a)))
	}
}

// status sends req and returns the answer's status, its body read and
// closed.
func status(req *http.Request) (int, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// isClosed reports whether err says the server closed the connection
// while the client was still sending: how a server that answered early
// and stopped reading looks to a client.
func isClosed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

func hasFieldError(p map[string]any, field, code string) bool {
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok && m["field"] == field && m["code"] == code {
			return true
		}
	}
	return false
}

func nested(open, closing string, depth int) string {
	return strings.Repeat(open, depth) + "1" + strings.Repeat(closing, depth)
}

func truncated(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
