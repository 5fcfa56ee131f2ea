package txmodel

import (
	"fmt"
	"time"
)

// Layouts of timestamps without a zone, which mean UTC; the original's
// clients send "2024-09-11T00:00:00". ParseTimestamp upper-cases a
// lowercase t and z before it tries them (see normaliseCase).
var zonelessLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

// Layouts of timestamps with a zone.
var zonedLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
}

// ParseTimestamp parses an RFC 3339 date-time; without a zone it means UTC.
// The result is in UTC, truncated to microseconds, and within the years
// 0001 to 9999: four-digit years that RFC 3339 can write and that
// PostgreSQL can store (it has no year 0; Go's year 0 is its 1 BC, which a
// date column would refuse).
//
// Between date and time stands a T, a t (RFC 3339, section 5.6, NOTE) or a
// space (the same NOTE; the original's clients send it), and the zone is
// Z, z or a numeric offset. Nothing else is read case-insensitively.
//
// A leap second, second 60, reads as the first instant of the next second
// (time.Time has no 61st second): "2016-12-31T23:59:60Z" and
// "2017-01-01T00:59:60+01:00" are 2017-01-01T00:00:00Z, and a fraction is
// kept, so 23:59:60.5 is 00:00:00.5 of the next day. It is accepted only
// where one can fall, at 23:59:60 in UTC; elsewhere second 60 is an error
// that says so. No table of the leap seconds announced is consulted: any
// day's last second may be one, and the instant after it is returned.
func ParseTimestamp(s string) (time.Time, error) {
	text := normaliseCase(s)
	leap := isSecond60(text)
	if leap {
		// Read the second as 59 and add it back once the zone is known.
		text = text[:17] + "59" + text[19:]
	}
	t, ok := parseLayouts(text)
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 date-time such as 2024-09-11T00:00:00Z", truncate(s, 64))
	}
	if leap {
		if u := t.UTC(); u.Hour() != 23 || u.Minute() != 59 || u.Second() != 59 {
			return time.Time{}, fmt.Errorf("%q has second 60, which is only valid as a leap second, at 23:59:60 UTC", truncate(s, 64))
		}
		t = t.Add(time.Second)
	}
	return checkRange(normaliseTime(t), s)
}

// parseLayouts parses s with the first layout that fits: the zoned ones,
// then the zoneless ones in UTC.
func parseLayouts(s string) (time.Time, bool) {
	for _, layout := range zonedLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	for _, layout := range zonelessLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// normaliseCase upper-cases the two letters RFC 3339 lets a date-time write
// in lowercase and time.Parse does not: the t between date and time, at
// index 10, and a trailing z for UTC. It touches only those two places and
// only after a YYYY-MM-DD date, so no other letter, and no t or z anywhere
// else, becomes acceptable.
func normaliseCase(s string) string {
	if !hasDatePrefix(s) {
		return s
	}
	if len(s) > 10 && s[10] == 't' {
		s = s[:10] + "T" + s[11:]
	}
	if n := len(s); n > 10 && s[n-1] == 'z' {
		s = s[:n-1] + "Z"
	}
	return s
}

// hasDatePrefix reports whether s starts with a date of the form YYYY-MM-DD.
func hasDatePrefix(s string) bool {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9} {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isSecond60 reports whether s, after a YYYY-MM-DD date and a separator,
// has a time whose second, at index 17, is 60. Whether the rest is a
// date-time is left to the layouts.
func isSecond60(s string) bool {
	return hasDatePrefix(s) && len(s) >= 19 && s[13] == ':' && s[16] == ':' && s[17:19] == "60"
}

// checkRange refuses an instant that falls outside the years 0001 to 9999
// once in UTC, such as "0001-01-01T00:00:00+01:00": the year 0 is no year
// PostgreSQL knows, so a transaction of that year could be stored but
// never converted (the rate's date would be refused), and beyond 9999 no
// RFC 3339 text names it.
func checkRange(t time.Time, s string) (time.Time, error) {
	if !inRange(t) {
		return time.Time{}, fmt.Errorf("%q lies outside the years %s in UTC", truncate(s, 64), yearRange)
	}
	return t, nil
}

// yearRange names the years a timestamp may have, for messages.
const yearRange = "0001 to 9999"

// inRange reports whether t, in UTC, lies in the years 0001 to 9999.
func inRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

func normaliseTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
