// Package envconfig reads a service's configuration from environment
// variables: one syntax and one meaning for each name across the
// services, and every bad variable reported at once, by name.
package envconfig

import (
	"errors"
	"fmt"
	"net/url"
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
	u, err := url.Parse(v)
	if err != nil {
		e.Fail(name, "not a URL")
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	e.Fail(name, "scheme %q, want one of %s", u.Scheme, strings.Join(schemes, ", "))
	return v
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

// Redact returns a URL with the password of its user info masked, for logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
