// Package raterule decides which day's exchange rate converts a
// transaction, by the rule the converter runs with (RATE_RULE), and
// whether a rate is too old to use (RATES_MAX_AGE_DAYS).
package raterule

import (
	"fmt"
	"strings"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Publication is when the rates provider publishes a day's rates: a time of
// day in its zone, the ECB's 16:00 in Frankfurt by default. Its zone is
// also the provider's calendar: a day is over at the midnight that ends it
// there.
type Publication struct {
	Hour, Minute int
	Zone         *time.Location
}

// DefaultPublication is the text of the ECB's publication time.
const DefaultPublication = "16:00 Europe/Berlin"

// ParsePublication reads "HH:MM Zone", e.g. "16:00 Europe/Berlin" or
// "14:15 UTC"; Zone is an IANA time zone name.
func ParsePublication(s string) (Publication, error) {
	clock, zone, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return Publication{}, fmt.Errorf("%q is not HH:MM and a time zone, such as %q", s, DefaultPublication)
	}
	t, err := time.Parse("15:04", clock)
	if err != nil {
		return Publication{}, fmt.Errorf("%q: the time %q is not HH:MM", s, clock)
	}
	loc, err := time.LoadLocation(strings.TrimSpace(zone))
	if err != nil {
		return Publication{}, fmt.Errorf("%q: %w", s, err)
	}
	return Publication{Hour: t.Hour(), Minute: t.Minute(), Zone: loc}, nil
}

// String is p as ParsePublication reads it.
func (p Publication) String() string {
	return fmt.Sprintf("%02d:%02d %s", p.Hour, p.Minute, p.Zone)
}

// Rule chooses the day whose rate converts a transaction.
type Rule struct {
	// Kind is txmodel.RateRuleDay or txmodel.RateRuleAsOf.
	Kind txmodel.RateRule
	// Publication is when the provider publishes; RateRuleAsOf needs it.
	Publication Publication
	// MaxAgeDays is how many days a rate may be dated before the day asked
	// and still be used.
	MaxAgeDays int
}

// Day returns the calendar day, at UTC midnight, to ask the provider for
// the rate of a transaction at ts. The provider answers that day's rate or
// the last one published before it (a weekend, a holiday).
//
// RateRuleDay: ts's UTC calendar day.
//
// RateRuleAsOf: the latest day whose rate was published before ts: ts's
// calendar day in the publication zone when ts is at or after the
// publication time that day, else the day before.
func (r Rule) Day(ts time.Time) time.Time {
	if r.Kind != txmodel.RateRuleAsOf {
		y, m, d := ts.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	local := ts.In(r.Publication.Zone)
	y, m, d := local.Date()
	published := time.Date(y, m, d, r.Publication.Hour, r.Publication.Minute, 0, 0, r.Publication.Zone)
	if local.Before(published) {
		d--
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Age is the number of calendar days rate lies before asked (both UTC
// midnights); negative when it lies after.
func Age(asked, rate time.Time) int {
	return int(asked.Sub(rate).Hours() / 24)
}

// Stale reports whether a rate dated rate is too old to convert at for
// the day asked.
func (r Rule) Stale(asked, rate time.Time) bool {
	return Age(asked, rate) > r.MaxAgeDays
}
