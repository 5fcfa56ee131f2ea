package ratesclient

import (
	"fmt"
	"strings"
	"time"
)

// query is one question to a provider.
type query struct {
	day    time.Time // calendar day asked, UTC midnight
	codes  []string  // sorted, without Base
	latest bool      // the latest quotes of every currency (Check)
}

// key identifies the answer in the cache and among flights.
func (q query) key() string {
	return q.day.Format(time.DateOnly) + "/" + strings.Join(q.codes, ",")
}

// String is the prefix of every error message about q.
func (q query) String() string {
	if q.latest {
		return "latest quotes"
	}
	return fmt.Sprintf("quotes of %s for %s", strings.Join(q.codes, ","), q.day.Format(time.DateOnly))
}

// civilDay is t's UTC calendar day at midnight.
func civilDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
