package txmodel

// The types of the problems (RFC 9457) the API answers with: URIs relative
// to the API's base, each described in the README's "Errors" section. The
// api writes them and txclient reads them, from this one list.
const (
	ProblemInvalidFields = "/problems/invalid-fields"
	ProblemMalformedBody = "/problems/malformed-body"
	ProblemConflict      = "/problems/conflict"
	ProblemNotFound      = "/problems/not-found"
	ProblemInvalidQuery  = "/problems/invalid-query"
	ProblemUnavailable   = "/problems/unavailable"
	ProblemUnauthorized  = "/problems/unauthorized"
	ProblemRateLimited   = "/problems/rate-limited"
	// ProblemBlank is RFC 9457's type of a problem with no more to say than
	// its status.
	ProblemBlank = "about:blank"
)
