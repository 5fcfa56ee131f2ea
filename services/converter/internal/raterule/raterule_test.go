package raterule

import (
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

func berlin(t *testing.T) Publication {
	t.Helper()
	p, err := ParsePublication(DefaultPublication)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDay(t *testing.T) {
	pub := berlin(t)
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	tests := []struct {
		name string
		kind txmodel.RateRule
		ts   string
		want string
	}{
		{"day: its UTC date", txmodel.RateRuleDay, "2024-09-11T15:00:00Z", "2024-09-11"},
		{"day: just before UTC midnight", txmodel.RateRuleDay, "2024-09-11T23:59:59Z", "2024-09-11"},
		{"day: after midnight in Berlin, still the UTC day", txmodel.RateRuleDay, "2024-09-11T22:30:00Z", "2024-09-11"},
		{"day: a zone's offset does not move it off UTC", txmodel.RateRuleDay, "2024-09-12T01:00:00+03:00", "2024-09-11"},
		{"day: a Saturday stays a Saturday (the provider answers Friday)", txmodel.RateRuleDay, "2024-09-14T12:00:00Z", "2024-09-14"},
		// 16:00 in Berlin is 14:00 UTC in summer, 15:00 UTC in winter.
		{"as-of: before publication, the day before", txmodel.RateRuleAsOf, "2024-09-11T13:59:59Z", "2024-09-10"},
		{"as-of: at publication, that day", txmodel.RateRuleAsOf, "2024-09-11T14:00:00Z", "2024-09-11"},
		{"as-of: winter, before publication", txmodel.RateRuleAsOf, "2024-12-02T14:59:59Z", "2024-12-01"},
		{"as-of: winter, at publication", txmodel.RateRuleAsOf, "2024-12-02T15:00:00Z", "2024-12-02"},
		{"as-of: just before midnight in Berlin", txmodel.RateRuleAsOf, "2024-09-11T21:59:59Z", "2024-09-11"},
		{"as-of: just after midnight in Berlin, the UTC day before", txmodel.RateRuleAsOf, "2024-09-11T22:00:00Z", "2024-09-11"},
		{"as-of: just after midnight in UTC", txmodel.RateRuleAsOf, "2024-09-12T00:00:01Z", "2024-09-11"},
		{"as-of: Monday morning takes Sunday (the provider answers Friday)", txmodel.RateRuleAsOf, "2024-09-16T07:00:00Z", "2024-09-15"},
		{"as-of: the first of a month before publication", txmodel.RateRuleAsOf, "2024-10-01T08:00:00Z", "2024-09-30"},
		{"as-of: the first of a year", txmodel.RateRuleAsOf, "2025-01-01T00:30:00+01:00", "2024-12-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rule{Kind: tt.kind, Publication: pub}
			if got := r.Day(at(tt.ts)).Format(time.DateOnly); got != tt.want {
				t.Errorf("Day(%s) = %s, want %s", tt.ts, got, tt.want)
			}
			if d := r.Day(at(tt.ts)); d.Location() != time.UTC || d.Hour() != 0 {
				t.Errorf("Day(%s) = %v, want a UTC midnight", tt.ts, d)
			}
		})
	}
}

func TestAsOfInAnotherZone(t *testing.T) {
	pub, err := ParsePublication("14:15 UTC")
	if err != nil {
		t.Fatal(err)
	}
	r := Rule{Kind: txmodel.RateRuleAsOf, Publication: pub}
	for ts, want := range map[time.Time]string{
		time.Date(2024, 9, 11, 14, 14, 59, 0, time.UTC): "2024-09-10",
		time.Date(2024, 9, 11, 14, 15, 0, 0, time.UTC):  "2024-09-11",
	} {
		if got := r.Day(ts).Format(time.DateOnly); got != want {
			t.Errorf("Day(%s) = %s, want %s", ts, got, want)
		}
	}
}

func TestStale(t *testing.T) {
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	r := Rule{MaxAgeDays: 5}
	tests := []struct {
		asked, rate string
		age         int
		stale       bool
	}{
		{"2024-09-11", "2024-09-11", 0, false},
		{"2024-09-15", "2024-09-13", 2, false}, // Sunday: Friday's
		{"2025-04-22", "2025-04-17", 5, false}, // Easter Tuesday before publication: Maundy Thursday's
		{"2025-04-23", "2025-04-17", 6, true},
		{"2026-11-30", "2024-09-20", 801, true},  // ratesd's built-in table asked for today
		{"2024-09-01", "2024-09-11", -10, false}, // a provider without history
		// Across a change of summer time the days still count whole.
		{"2024-10-28", "2024-10-25", 3, false},
	}
	for _, tt := range tests {
		if got := Age(day(tt.asked), day(tt.rate)); got != tt.age {
			t.Errorf("Age(%s, %s) = %d, want %d", tt.asked, tt.rate, got, tt.age)
		}
		if got := r.Stale(day(tt.asked), day(tt.rate)); got != tt.stale {
			t.Errorf("Stale(%s, %s) = %v, want %v", tt.asked, tt.rate, got, tt.stale)
		}
	}
}

func TestParsePublication(t *testing.T) {
	p := berlin(t)
	if p.Hour != 16 || p.Minute != 0 || p.Zone.String() != "Europe/Berlin" || p.String() != DefaultPublication {
		t.Errorf("ParsePublication(%q) = %+v (%s)", DefaultPublication, p, p)
	}
	for _, bad := range []string{"", "16:00", "4pm Europe/Berlin", "25:00 UTC", "16:00 Mars/Olympus"} {
		if _, err := ParsePublication(bad); err == nil {
			t.Errorf("ParsePublication(%q) accepted", bad)
		}
	}
}
