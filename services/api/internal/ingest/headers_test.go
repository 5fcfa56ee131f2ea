package ingest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBoundHeaders(t *testing.T) {
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	members := make([]string, 100)
	for i := range members {
		members[i] = "vendor" + strings.Repeat("x", 3) + "=" + strings.Repeat("v", 20)
	}
	long := strings.Join(members, ",")
	got := boundHeaders(map[string]string{"traceparent": tp, "tracestate": long, "baggage": long, "x-other": "1"})
	if got["traceparent"] != tp || got["x-other"] != "" {
		t.Errorf("traceparent %q, x-other %q: want traceparent kept, anything else dropped", got["traceparent"], got["x-other"])
	}
	for k, limit := range map[string]int{"tracestate": MaxTraceState, "baggage": MaxBaggage} {
		v := got[k]
		if len(v) > limit || len(v) < limit-30 || !strings.HasPrefix(long, v) || strings.HasSuffix(v, ",") {
			t.Errorf("%s: %d bytes %q..., want whole members from the start, up to %d bytes", k, len(v), v[:min(len(v), 40)], limit)
		}
	}
	one := map[string]string{"tracestate": strings.Repeat("a", MaxTraceState+1)}
	if diff := cmp.Diff(map[string]string{}, boundHeaders(one)); diff != "" {
		t.Errorf("one member over the bound is dropped (-want +got):\n%s", diff)
	}
}
