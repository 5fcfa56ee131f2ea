// Package envconfig reads a service's configuration from environment
// variables: one syntax and one meaning for each name across the
// services, and every bad variable reported at once, by name.
package envconfig

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// Env reads a service's configuration from environment variables and
// collects what is wrong with them, so a service reports every bad variable
// at start, each by name. The services share it so that one name has one
// meaning and one syntax everywhere.
type Env struct {
	getenv func(string) string
	errs   []error
}

// NewEnv returns an Env reading through getenv (os.Getenv in production).
func NewEnv(getenv func(string) string) *Env {
	return &Env{getenv: getenv}
}

// Err returns every problem found so far, joined, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Fail records a problem with a variable that the caller checked itself.
func (e *Env) Fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// String returns the variable, or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

// URL returns the variable, or def, and records a problem unless it parses
// as a URL with one of schemes.
func (e *Env) URL(name, def string, schemes ...string) string {
	v := e.String(name, def)
	if problem := checkURL(v, schemes); problem != "" {
		e.Fail(name, "%s", problem)
	}
	return v
}

// URLs returns the variable, or def: a comma-separated list of one or more
// URLs, such as the nodes of a broker cluster. It records a problem, naming
// the URL's place in the list, unless every one parses with one of schemes.
// The list is returned as written; SplitList cuts it.
func (e *Env) URLs(name, def string, schemes ...string) string {
	v := e.String(name, def)
	urls := SplitList(v)
	if len(urls) == 0 {
		e.Fail(name, "no URL in the list")
	}
	for i, u := range urls {
		if problem := checkURL(u, schemes); problem != "" {
			e.Fail(name, "URL %d of %d: %s", i+1, len(urls), problem)
		}
	}
	return v
}

// SplitList returns the items of a comma-separated list, each trimmed of
// white space, the empty ones left out.
func SplitList(list string) []string {
	var items []string
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// checkURL returns what is wrong with v as a URL with one of schemes, or
// "". The problem never quotes v, which may hold a password.
func checkURL(v string, schemes []string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "not a URL"
	}
	if slices.Contains(schemes, u.Scheme) {
		return ""
	}
	return fmt.Sprintf("scheme %q, want one of %s", u.Scheme, strings.Join(schemes, ", "))
}

// Int returns the variable as a whole number from lo to hi, or def.
func (e *Env) Int(name string, def, lo, hi int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.Fail(name, "%q is not a whole number from %d to %d", v, lo, hi)
		return def
	}
	return n
}

// Bool returns the variable as true or false ("true", "1", "false", "0"),
// or def.
func (e *Env) Bool(name string, def bool) bool {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.Fail(name, "%q is not true or false", v)
		return def
	}
	return b
}

// Float returns the variable as a number from lo to hi, or def.
func (e *Env) Float(name string, def, lo, hi float64) float64 {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < lo || f > hi {
		e.Fail(name, "%q is not a number from %g to %g", v, lo, hi)
		return def
	}
	return f
}

// Duration returns the variable as a positive duration ("500ms", "2s"), or
// def.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.Fail(name, "%q is not a positive duration such as 500ms or 2s", v)
		return def
	}
	return d
}

// DurationOrZero returns the variable as a duration of zero or more ("0",
// "500us"), or def.
func (e *Env) DurationOrZero(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.Fail(name, "%q is not a duration of zero or more such as 0 or 500us", v)
		return def
	}
	return d
}

// Durations returns the variable as a comma-separated list of positive
// durations ("5s,30s,2m"), or def.
func (e *Env) Durations(name string, def []time.Duration) []time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			e.Fail(name, "%q is not a comma-separated list of positive durations such as 5s,30s,2m", v)
			return def
		}
		out = append(out, d)
	}
	return out
}

// Log returns the logging configuration from LOG_LEVEL and LOG_FORMAT.
func (e *Env) Log() telemetry.LogConfig {
	c, err := telemetry.ParseLogConfig(e.getenv("LOG_LEVEL"), e.getenv("LOG_FORMAT"))
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return c
}

// mask stands in for a secret in what Redact returns: the mask
// url.URL.Redacted puts in place of a password.
const mask = "xxxxx"

// Redact returns a connection string fit for a log: the password of a
// URL's user info and the value of each secret query parameter are masked
// as "xxxxx", as url.URL.Redacted masks a password. A string that does not
// start with a scheme and "://" is read as a libpq keyword/value string
// ("host=h user=u password='a b'"), which pgx accepts as DATABASE_URL, and
// its secret values are masked likewise. All else, the parameters' order
// included, is kept as written. A string that does not parse is returned as
// "(unparseable URL)" or "(unparseable connection string)", so that no
// secret in it reaches a log.
//
// A parameter is secret when its name, in any case, contains "password",
// "secret" or "token", or is "key", "apikey", "api_key", "api-key" or
// "access_key". Parameters that name a file holding a secret, such as
// passfile and sslkey, are kept: a path is not a secret.
func Redact(raw string) string {
	if !hasScheme(raw) {
		return redactKeywordValue(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.RawQuery = redactQuery(u.RawQuery)
	return u.Redacted()
}

// RedactList returns a comma-separated list of URLs, as URLs reads it, fit
// for a log: each item as Redact returns it, joined by commas.
func RedactList(raw string) string {
	items := SplitList(raw)
	for i, item := range items {
		items[i] = Redact(item)
	}
	return strings.Join(items, ",")
}

// hasScheme reports whether raw starts with a URL scheme and "://".
func hasScheme(raw string) bool {
	scheme, _, found := strings.Cut(raw, "://")
	if !found || scheme == "" {
		return false
	}
	for i, c := range scheme {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		other := '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
		if !letter && (i == 0 || !other) {
			return false
		}
	}
	return true
}

// redactQuery masks the values of the secret parameters of a URL's raw
// query. It edits the query as written rather than through url.Values,
// which would sort the parameters and re-encode them.
func redactQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	params := strings.Split(rawQuery, "&")
	for i, p := range params {
		rawName, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			name = rawName
		}
		if isSecret(name) {
			params[i] = rawName + "=" + mask
		}
	}
	return strings.Join(params, "&")
}

// redactKeywordValue masks the secret values of a libpq keyword/value
// connection string, read as libpq reads it: keyword=value pairs with
// white space between them and optionally around "=", each value either
// in single quotes or running to the next white space, a backslash
// escaping the byte after it.
func redactKeywordValue(raw string) string {
	const unparseable = "(unparseable connection string)"
	var b strings.Builder
	copied := 0 // raw[:copied] is in b
	for i := skipSpace(raw, 0); i < len(raw); i = skipSpace(raw, i) {
		eq := strings.IndexByte(raw[i:], '=')
		if eq < 0 {
			return unparseable
		}
		keyword := strings.TrimRightFunc(raw[i:i+eq], isSpace)
		if keyword == "" || strings.ContainsFunc(keyword, isSpace) {
			return unparseable
		}
		start := skipSpace(raw, i+eq+1)
		end, ok := valueEnd(raw, start)
		if !ok {
			return unparseable
		}
		if isSecret(keyword) {
			b.WriteString(raw[copied:start])
			b.WriteString(mask)
			copied = end
		}
		i = end
	}
	b.WriteString(raw[copied:])
	return b.String()
}

// valueEnd returns where the keyword/value value that starts at raw[start]
// ends: after its closing quote, or at white space or the end of raw. It
// reports false for a quote that is never closed.
func valueEnd(raw string, start int) (end int, ok bool) {
	quoted := start < len(raw) && raw[start] == '\''
	i := start
	if quoted {
		i++
	}
	for i < len(raw) {
		switch c := rune(raw[i]); {
		case c == '\\':
			i += 2
		case quoted && c == '\'':
			return i + 1, true
		case !quoted && isSpace(c):
			return i, true
		default:
			i++
		}
	}
	return len(raw), !quoted
}

// skipSpace returns the index of the first byte from i on that is not
// white space, or len(s).
func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(rune(s[i])) {
		i++
	}
	return i
}

// isSpace reports whether c is white space as libpq's isspace has it.
func isSpace(c rune) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// isSecret reports whether a connection parameter named name carries a
// secret.
func isSecret(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "key", "apikey", "api_key", "api-key", "access_key":
		return true
	}
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "token")
}
