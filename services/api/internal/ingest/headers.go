package ingest

import "strings"

// The most bytes of trace context stored with an outbox entry and sent
// with its message. traceparent is always 55 bytes: the propagator writes
// it from the parsed span context, never the client's text. W3C Trace
// Context asks that at least 512 bytes of tracestate be propagated;
// baggage is kept to a size a message header should carry.
const (
	MaxTraceState = 512
	MaxBaggage    = 1024
)

// boundHeaders keeps of the injected trace context only the W3C headers,
// each within its bound: list members are dropped from the end until the
// list fits, as W3C Trace Context says to truncate tracestate. A client
// sends these headers, so what is stored of them is bounded whatever it
// sent.
func boundHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		switch k {
		case "traceparent":
			out[k] = v
		case "tracestate":
			if v = truncateList(v, MaxTraceState); v != "" {
				out[k] = v
			}
		case "baggage":
			if v = truncateList(v, MaxBaggage); v != "" {
				out[k] = v
			}
		}
	}
	return out
}

// truncateList drops members of a comma-separated list from its end until
// it holds at most limit bytes.
func truncateList(list string, limit int) string {
	for len(list) > limit {
		i := strings.LastIndexByte(list, ',')
		if i < 0 {
			return ""
		}
		list = strings.TrimRight(list[:i], " \t")
	}
	return list
}
