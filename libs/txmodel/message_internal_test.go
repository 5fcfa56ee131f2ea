package txmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeMessageTwoPass is how messages were read before decodeMessage: a
// pass over the keys with json.Decoder, then json.Unmarshal. It is kept
// here as the reference decodeMessage must agree with.
func decodeMessageTwoPass(body []byte) (Message, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return Message{}, fmt.Errorf("%w: message: %s", ErrMalformed, jsonErrorText(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return Message{}, fmt.Errorf("%w: message: want a JSON object", ErrMalformed)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Message{}, fmt.Errorf("%w: message: %s", ErrMalformed, jsonErrorText(err))
		}
		key, _ := tok.(string)
		if seen[key] {
			return Message{}, fmt.Errorf("%w: message: field %q given more than once", ErrMalformed, key)
		}
		seen[key] = true
		for _, f := range messageFields {
			if key != f && strings.EqualFold(key, f) {
				return Message{}, fmt.Errorf("%w: message: field %q is not %q", ErrMalformed, key, f)
			}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Message{}, fmt.Errorf("%w: message: %s", ErrMalformed, jsonErrorText(err))
		}
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, fmt.Errorf("%w: message: %s", ErrMalformed, jsonErrorText(err))
	}
	return m, nil
}

// addCorpus adds the seed corpus of the fuzz target named target
// (testdata/fuzz/<target>) to f.
func addCorpus(f *testing.F, target string) {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		// A corpus file holds `[]byte("...")` after its header line.
		if _, lit, ok := strings.Cut(string(b), "[]byte("); ok {
			var s string
			if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimSpace(lit), ")"), "%q", &s); err == nil {
				f.Add([]byte(s))
			}
		}
	}
}

// FuzzDecodeMessageAgrees checks that the one-pass decoder accepts exactly
// what the two-pass reference accepts, and reads the same message from it.
// Its error texts may differ; its error kind may not.
func FuzzDecodeMessageAgrees(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"transaction_id":"tx-1","user_id":"123","amount":"100.00","currency":"USD","timestamp":"2024-09-11T00:00:00Z","received_at":"2024-09-11T12:00:00.123456789Z"}`,
		`{"version":1,"amount":"1","amount":"2"}`,
		`{"x":1,"x":2}`,
		`{"x":1,"X":2,"Amount":"1"}`,
		`{"version":1} `,
		`{"version":1} x`,
		`{"version":1}{"version":1}`,
		`{"version":1.0}`,
		`{"version":"1"}`,
		`{"version":null,"amount":null,"timestamp":null}`,
		`{"timestamp":"yesterday"}`,
		`{"amount":1e400}`,
		`{"user_id":"\u0041\ud800"}`,
		"{\"user_id\":\"\xff\"}",
		`{"am\u006funt":"1","amount":"2"}`,
		`{"nested":{"version":2},"version":1}`,
		`[]`, `null`, `"x"`, ``, `{`, `{"version"`, `{"version":}`,
	} {
		f.Add([]byte(s))
	}
	// The seed corpus of the public decoder's fuzz target too.
	addCorpus(f, "FuzzDecodeMessage")
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := decodeMessage(body)
		want, wantErr := decodeMessageTwoPass(body)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decodeMessage(%q): err %v, the reference's %v", body, gotErr, wantErr)
		}
		if gotErr != nil {
			if !errors.Is(gotErr, ErrMalformed) {
				t.Fatalf("decodeMessage(%q) = %v, want ErrMalformed", body, gotErr)
			}
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decodeMessage(%q) differs from the reference (-want +got):\n%s", body, diff)
		}
	})
}
