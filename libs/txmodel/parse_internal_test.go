package txmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// decodeObjectV1 is decodeObject as it was with encoding/json's Decoder,
// kept as the reference the jsontext one must agree with.
func decodeObjectV1(data []byte) (map[string]json.RawMessage, []FieldError, error) {
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrMalformed, jsonErrorText(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("%w: want a JSON object", ErrMalformed)
	}
	fields := make(map[string]json.RawMessage, len(contractFields))
	var errs []FieldError
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrMalformed, jsonErrorText(err))
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrMalformed, jsonErrorText(err))
		}
		if _, seen := fields[key]; seen {
			errs = append(errs, FieldError{Field: key, Code: CodeDuplicateField, Message: "given more than once"})
			continue
		}
		if !isContractField(key) {
			errs = append(errs, FieldError{Field: key, Code: CodeUnknownField, Message: "unknown field"})
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrMalformed, jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	for _, fe := range errs {
		if fe.Code == CodeDuplicateField {
			fields[fe.Field] = nil
		}
	}
	return fields, errs, nil
}

// FuzzDecodeObjectAgrees checks that decodeObject accepts exactly what the
// encoding/json reference accepts, with the same fields, values and field
// errors, and that the strings in it unquote as encoding/json unquotes
// them. Error texts may differ.
func FuzzDecodeObjectAgrees(f *testing.F) {
	for _, s := range []string{
		`{"transaction_id":"tx-1","user_id":"123","amount":"100.00","currency":"USD","timestamp":"2024-09-11T00:00:00Z"}`,
		`{"amount":1,"amount":2}`, `{"x":1,"x":2,"X":3}`, `{"amount": 1e400 }`, ` {"a":[1,{"b":null}]} `,
		`{"user_id":"\u0041\ud800"}`, `{"user_id":"a\"b\\c\/d\u00e9"}`, `{} x`, `{}{}`, `[]`, `null`, `"x"`, ``,
		`{`, `{"a"`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a" 1}`, "{\"a\":\"\t\"}", `{"a":01}`, `{"a":-}`, `{"a":tru}`,
	} {
		f.Add([]byte(s))
	}
	addCorpus(f, "FuzzParseTransaction")
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErrs, gotErr := decodeObject(body)
		want, wantErrs, wantErr := decodeObjectV1(body)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decodeObject(%q): err %v, the reference's %v", body, gotErr, wantErr)
		}
		if gotErr != nil {
			if !errors.Is(gotErr, ErrMalformed) {
				t.Fatalf("decodeObject(%q) = %v, want ErrMalformed", body, gotErr)
			}
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decodeObject(%q): fields differ from the reference (-want +got):\n%s", body, diff)
		}
		if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
			t.Fatalf("decodeObject(%q): field errors differ from the reference (-want +got):\n%s", body, diff)
		}
		for k, raw := range got {
			if len(raw) == 0 || raw[0] != '"' {
				continue
			}
			var want string
			wantErr := json.Unmarshal(raw, &want)
			s, err := unquote(raw)
			if (err == nil) != (wantErr == nil) || s != want {
				t.Fatalf("unquote of field %q (%s) = %q, %v; encoding/json: %q, %v", k, raw, s, err, want, wantErr)
			}
		}
	})
}
