package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// specPath is the API's contract, relative to this package.
const specPath = "../../services/api/openapi.yaml"

// spec holds openapi.yaml, loaded and validated once for all tests.
var spec struct {
	once sync.Once
	err  error
	raw  []byte
	doc  *openapi3.T
}

// loadSpec returns the parsed openapi.yaml and its bytes.
func loadSpec(t *testing.T) (*openapi3.T, []byte) {
	t.Helper()
	spec.once.Do(func() {
		spec.raw, spec.err = os.ReadFile(specPath)
		if spec.err != nil {
			return
		}
		spec.doc, spec.err = openapi3.NewLoader().LoadFromData(spec.raw)
		if spec.err == nil {
			spec.err = spec.doc.Validate(context.Background())
		}
	})
	if spec.err != nil {
		t.Fatalf("%s: %v", specPath, spec.err)
	}
	return spec.doc, spec.raw
}

// contractClient returns an HTTP client that holds every request to the
// api at baseURL, and every answer, against openapi.yaml, and fails t on a
// mismatch. keys says whether the api requires API keys.
func contractClient(t *testing.T, baseURL string, keys bool) *http.Client {
	t.Helper()
	doc, _ := loadSpec(t)
	// The document names localhost:8080; this api listens elsewhere.
	local := *doc
	local.Servers = openapi3.Servers{{URL: baseURL}}
	router, err := gorillamux.NewRouter(&local)
	if err != nil {
		t.Fatalf("router over %s: %v", specPath, err)
	}
	return &http.Client{Transport: &contractChecker{t: t, doc: &local, router: router, keys: keys, next: http.DefaultTransport}}
}

// contractChecker is an http.RoundTripper that checks each exchange with
// the api against openapi.yaml:
//
//   - every answer must be one the contract describes for its operation
//     and status (an undocumented status is a mismatch too);
//   - a request the contract refuses must be refused by the api (a 4xx, or
//     for a batch an element that failed): otherwise the contract is
//     stricter than the api;
//   - a POST the contract accepts must not be refused as malformed (400
//     malformed-body, 415): otherwise the contract is laxer than the api;
//   - a request outside the contract's paths must get a 404 or 405
//     problem.
type contractChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	keys   bool
	next   http.RoundTripper
}

// RoundTrip sends req and checks the exchange; the answer's body is read
// whole and handed back unread.
func (c *contractChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	check, reqErr, found := c.checkRequest(req, body)
	send := withBody(req, body)
	resp, err := c.next.RoundTrip(send)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	if !found {
		c.checkOutside(what, resp, respBody)
		return resp, nil
	}
	c.checkResponse(what, check, reqErr, resp, respBody)
	return resp, nil
}

// withBody is a copy of req that sends body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	if req.Body == nil {
		return r
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r
}

// checkRequest validates req against its operation; found is false when
// no operation of the contract matches it.
func (c *contractChecker) checkRequest(req *http.Request, body []byte) (in *openapi3filter.RequestValidationInput, reqErr error, found bool) {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return nil, nil, false
	}
	in = &openapi3filter.RequestValidationInput{
		Request:    withBody(req, body),
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:          true,
			SkipSettingDefaults: true,
			AuthenticationFunc:  c.authenticate,
		},
	}
	in.Options.WithCustomSchemaErrorFunc(schemaErrorText)
	reqErr = errors.Join(openapi3filter.ValidateRequest(req.Context(), in), strictJSON(req, body))
	return in, reqErr, true
}

// strictJSON holds a request's body to what its media type demands where
// kin-openapi reads leniently: it decodes the first JSON value and ignores
// what follows, turns invalid UTF-8 into U+FFFD, and takes an unparsable
// Content-Type for its prefix. RFC 8259 asks one JSON value in UTF-8, and
// so does the api.
func strictJSON(req *http.Request, body []byte) error {
	ct := req.Header.Get("Content-Type")
	if ct == "" || req.Body == nil {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("Content-Type %q: %w", ct, err)
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil
	}
	switch {
	case !utf8.Valid(body):
		return errors.New("the body is not UTF-8, as JSON must be (RFC 8259)")
	case !json.Valid(body):
		return errors.New("the body is not one JSON value (RFC 8259)")
	}
	return nil
}

// authenticate applies the bearer scheme where the api requires keys: a
// request must carry "Authorization: Bearer <something>". Whether the key
// is a configured one is the api's to say (401).
func (c *contractChecker) authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if !c.keys {
		return nil
	}
	if in.SecurityScheme.Type != "http" || in.SecurityScheme.Scheme != "bearer" {
		return fmt.Errorf("security scheme %s: not the bearer scheme this checker knows", in.SecuritySchemeName)
	}
	key, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" {
		return errors.New("no bearer token")
	}
	return nil
}

func (c *contractChecker) checkResponse(what string, in *openapi3filter.RequestValidationInput, reqErr error, resp *http.Response, body []byte) {
	t := c.t
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	out.Options.WithCustomSchemaErrorFunc(schemaErrorText)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: the answer breaks openapi.yaml: %v\nanswer: %s", what, err, excerpt(body))
	}
	switch {
	case reqErr != nil && !refused(in.Route, resp.StatusCode, body):
		t.Errorf("%s: openapi.yaml refuses the request, the api accepted it: %v\nanswer: %s", what, reqErr, excerpt(body))
	case reqErr == nil && in.Request.Method == http.MethodPost && malformed(resp.StatusCode, body):
		t.Errorf("%s: openapi.yaml accepts the request, the api refused it as malformed: %s", what, excerpt(body))
	}
}

// refused reports whether the api turned a request down: a 4xx, or a
// batch of which an element failed.
func refused(route *routers.Route, status int, body []byte) bool {
	if status >= 400 && status < 500 {
		return true
	}
	if route.Path != "/v1/transactions/batch" || status != http.StatusOK {
		return false
	}
	var out struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	if json.Unmarshal(body, &out) != nil {
		return false
	}
	for _, r := range out.Results {
		if r.Status >= 400 {
			return true
		}
	}
	return false
}

// malformed reports whether an answer says the body could not be read as
// JSON of the right shape.
func malformed(status int, body []byte) bool {
	if status == http.StatusUnsupportedMediaType {
		return true
	}
	var p struct {
		Type string `json:"type"`
	}
	return status == http.StatusBadRequest && json.Unmarshal(body, &p) == nil && p.Type == "/problems/malformed-body"
}

// checkOutside checks the answer to a request no operation of the contract
// matches: a 404 or 405 problem.
func (c *contractChecker) checkOutside(what string, resp *http.Response, body []byte) {
	t := c.t
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("%s: no operation of openapi.yaml matches the request, yet the api answered it", what)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: not JSON: %v: %s", what, err, excerpt(body))
		return
	}
	schema := c.doc.Components.Schemas["Problem"].Value
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors(), openapi3.SetSchemaErrorMessageCustomizer(schemaErrorText)); err != nil {
		t.Errorf("%s: not a Problem of openapi.yaml: %v\nanswer: %s", what, err, excerpt(body))
	}
}

// schemaErrorText says where and why a value breaks a schema, without
// kin-openapi's dump of the whole schema.
func schemaErrorText(e *openapi3.SchemaError) string {
	reason := e.Reason
	if e.Origin != nil {
		reason = e.Origin.Error()
	}
	if p := e.JSONPointer(); len(p) > 0 {
		return "at /" + strings.Join(p, "/") + ": " + reason
	}
	return reason
}

func excerpt(b []byte) string {
	if len(b) > 500 {
		return string(b[:500]) + "…"
	}
	return string(b)
}

// TestOpenAPIContract drives every operation of the api, and every problem
// it can answer while PostgreSQL is up, through the contract-checking
// client, so that openapi.yaml cannot drift from the code; and checks that
// GET /openapi.yaml serves that very file, without a key.
func TestOpenAPIContract(t *testing.T) {
	t.Parallel()
	const key, limitedKey = "contract-key", "limited-key"
	// A burst of 200 a key: plenty for this test's requests with the
	// first key, and a few hundred quick ones exhaust the second.
	s := start(t, options{
		apiKeys: "contract:" + sha256Hex(key) + ",limited:" + sha256Hex(limitedKey),
		apiEnv:  []string{"RATE_LIMIT=1", "RATE_BURST=200"},
	})
	_, raw := loadSpec(t)

	type answer struct {
		code   int
		header http.Header
		body   []byte
	}
	send := func(method, path, contentType, body, authorization string) answer {
		t.Helper()
		var r io.Reader
		if body != "" || method == http.MethodPost {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, s.api+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return answer{resp.StatusCode, resp.Header, b}
	}
	bearer := "Bearer " + key
	post := func(path, body string) answer {
		t.Helper()
		return send(http.MethodPost, path, "application/json", body, bearer)
	}
	get := func(path string) answer {
		t.Helper()
		return send(http.MethodGet, path, "", "", bearer)
	}
	// problemType is the type of a problem answer, "" for another body.
	problemType := func(a answer) string {
		var p struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(a.body, &p)
		return p.Type
	}

	t.Run("the document, without a key", func(t *testing.T) {
		a := send(http.MethodGet, "/openapi.yaml", "", "", "")
		if a.code != http.StatusOK || a.header.Get("Content-Type") != "application/yaml" || !bytes.Equal(a.body, raw) {
			t.Errorf("GET /openapi.yaml: %d %q, %d bytes; want 200 application/yaml with the %d bytes of %s", a.code, a.header.Get("Content-Type"), len(a.body), len(raw), specPath)
		}
	})

	original := body("contract-1", "100.0", "USD", "2024-09-11T00:00:00")
	creates := []struct {
		name, path, contentType, body string
		want                          int
		wantType                      string
	}{
		{"the original's body", "/v1/transactions", "application/json", original, http.StatusCreated, ""},
		{"the same again", "/v1/transactions", "application/json", original, http.StatusOK, ""},
		{"the same on the original's path", "/transaction", "application/json", original, http.StatusOK, ""},
		{"the id with other content", "/v1/transactions", "application/json", body("contract-1", "100.01", "USD", "2024-09-11T00:00:00"), http.StatusConflict, "/problems/conflict"},
		{"a currency without rates", "/v1/transactions", "application/json", body("contract-bhd", `"1.234"`, "bhd", "2024-09-11T00:00:00+02:00"), http.StatusCreated, ""},
		{"invalid fields", "/v1/transactions", "application/json", `{"transaction_id": "x", "user_id": "", "ammount": 1, "currency": "XAU", "timestamp": "2024-09-11"}`, http.StatusUnprocessableEntity, "/problems/invalid-fields"},
		{"not JSON", "/v1/transactions", "application/json", `not json`, http.StatusBadRequest, "/problems/malformed-body"},
		{"not JSON, original's path", "/transaction", "application/json", `[]`, http.StatusBadRequest, "/problems/malformed-body"},
		{"text/plain", "/v1/transactions", "text/plain", original, http.StatusUnsupportedMediaType, "about:blank"},
		{"over 64 KiB", "/v1/transactions", "application/json", original + strings.Repeat(" ", 64<<10), http.StatusRequestEntityTooLarge, "about:blank"},
		{
			"a batch", "/v1/transactions/batch", "application/json",
			"[" + strings.Join([]string{
				body("contract-b1", `"5"`, "EUR", "2024-09-11T00:00:00Z"),
				original,
				body("contract-1", "1", "USD", "2024-09-11T00:00:00Z"),
				body("contract-b2", "-1", "USD", "2024-09-11T00:00:00Z"),
				`"not an object"`,
			}, ",") + "]", http.StatusOK, "",
		},
		{"an empty batch", "/v1/transactions/batch", "application/json", `[]`, http.StatusUnprocessableEntity, "/problems/invalid-fields"},
		{"a batch that is no array", "/v1/transactions/batch", "application/json", original, http.StatusBadRequest, "/problems/malformed-body"},
		{"a batch in text/plain", "/v1/transactions/batch", "text/plain", "[" + original + "]", http.StatusUnsupportedMediaType, "about:blank"},
		{"a batch over 1 MiB", "/v1/transactions/batch", "application/json", "[" + original + strings.Repeat(" ", 1<<20) + "]", http.StatusRequestEntityTooLarge, "about:blank"},
	}
	for _, tt := range creates {
		a := send(http.MethodPost, tt.path, tt.contentType, tt.body, bearer)
		if a.code != tt.want || problemType(a) != tt.wantType {
			t.Errorf("%s: %d %s, want %d %q", tt.name, a.code, excerpt(a.body), tt.want, tt.wantType)
		}
	}
	var batch struct {
		Results []struct {
			Status int `json:"status"`
		} `json:"results"`
	}
	a := post("/v1/transactions/batch", "["+body("contract-b1", `"5"`, "EUR", "2024-09-11T00:00:00Z")+`, {}]`)
	if err := json.Unmarshal(a.body, &batch); err != nil || len(batch.Results) != 2 || batch.Results[0].Status != http.StatusOK || batch.Results[1].Status != http.StatusUnprocessableEntity {
		t.Errorf("batch replay: %d %s, want 200 with [200, 422]", a.code, excerpt(a.body))
	}

	// Every state of a transaction: received (just after), processed, failed.
	if a := post("/v1/transactions", body("contract-2", "1", "USD", "2024-09-11T00:00:00Z")); a.code != http.StatusCreated {
		t.Errorf("contract-2: %d %s", a.code, excerpt(a.body))
	}
	if a := get("/v1/transactions/contract-2"); a.code != http.StatusOK {
		t.Errorf("GET contract-2: %d %s", a.code, excerpt(a.body))
	}
	for id, want := range map[string]string{"contract-1": "processed", "contract-bhd": "failed"} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			a := get("/v1/transactions/" + id)
			var res struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(a.body, &res)
			if a.code == http.StatusOK && res.Status == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not %s within 30 s: %d %s", id, want, a.code, excerpt(a.body))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	reads := []struct {
		name, path string
		want       int
		wantType   string
	}{
		{"a missing transaction", "/v1/transactions/nobody", http.StatusNotFound, "/problems/not-found"},
		{"a list", "/v1/transactions", http.StatusOK, ""},
		{"a filtered page", "/v1/transactions?user_id=123&status=processed&limit=1", http.StatusOK, ""},
		{"a bad status and limit", "/v1/transactions?status=done&limit=0", http.StatusBadRequest, "/problems/invalid-query"},
		{"a limit too high", "/v1/transactions?limit=501", http.StatusBadRequest, "/problems/invalid-query"},
		{"a cursor the api never gave", "/v1/transactions?cursor=bogus", http.StatusBadRequest, "/problems/invalid-query"},
		{"no such endpoint", "/v2/nothing", http.StatusNotFound, "about:blank"},
	}
	for _, tt := range reads {
		a := get(tt.path)
		if a.code != tt.want || problemType(a) != tt.wantType {
			t.Errorf("%s: %d %s, want %d %q", tt.name, a.code, excerpt(a.body), tt.want, tt.wantType)
		}
	}
	// The next page, through the cursor of the first.
	var page struct {
		Items      []json.RawMessage `json:"items"`
		NextCursor *string           `json:"next_cursor"`
	}
	if err := json.Unmarshal(get("/v1/transactions?limit=1").body, &page); err != nil || page.NextCursor == nil {
		t.Errorf("first page of 1: %v, next_cursor %v; want a cursor", err, page.NextCursor)
	} else if a := get("/v1/transactions?limit=1&cursor=" + url.QueryEscape(*page.NextCursor)); a.code != http.StatusOK {
		t.Errorf("next page: %d %s", a.code, excerpt(a.body))
	}
	if a := send(http.MethodDelete, "/v1/transactions", "", "", bearer); a.code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /v1/transactions: %d, want 405", a.code)
	}

	for _, authorization := range []string{"", "Bearer not-" + key} {
		if a := send(http.MethodGet, "/v1/transactions", "", "", authorization); a.code != http.StatusUnauthorized || problemType(a) != "/problems/unauthorized" {
			t.Errorf("authorization %q: %d %s, want a 401 problem", authorization, a.code, excerpt(a.body))
		}
	}
	limited := false
	for range 1000 {
		a := send(http.MethodGet, "/v1/transactions/contract-1", "", "", "Bearer "+limitedKey)
		if a.code == http.StatusTooManyRequests {
			limited = problemType(a) == "/problems/rate-limited"
			break
		}
	}
	if !limited {
		t.Error("1000 requests with one key at RATE_LIMIT=1 got no 429 rate-limited problem")
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
