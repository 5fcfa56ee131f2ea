package txmodel

import (
	"strings"
	"unicode"
)

// MaxReasonLength bounds a failure reason, in characters.
const MaxReasonLength = 500

// CleanReason returns s fit to be stored and shown as a failure reason,
// whatever it holds (a reason often quotes what a rates provider or a
// message said): valid UTF-8, each invalid byte replaced by U+FFFD; no NUL
// or other control character, each run of them and of white space one
// space; trimmed; and at most MaxReasonLength characters, a longer one cut
// and ended with "…". PostgreSQL refuses a NUL in text and invalid UTF-8,
// and a reason it refused would leave its transaction unfinished.
func CleanReason(s string) string {
	runes := make([]rune, 0, min(len(s), MaxReasonLength+1))
	space := false
	for _, r := range s { // an invalid byte comes as utf8.RuneError, U+FFFD
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && len(runes) > 0 {
			runes = append(runes, ' ')
		}
		space = false
		runes = append(runes, r)
		if len(runes) > MaxReasonLength {
			break
		}
	}
	if len(runes) > MaxReasonLength {
		return strings.TrimRight(string(runes[:MaxReasonLength-1]), " ") + "…"
	}
	return string(runes)
}
