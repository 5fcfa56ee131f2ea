package worker

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDeferredAttrsWritesWhatWithAttrsWould: a logger through
// deferAttrs writes the same lines as one straight on the handler, With,
// WithGroup and all.
func TestDeferredAttrsWritesWhatWithAttrsWould(t *testing.T) {
	write := func(wrap func(slog.Handler) slog.Handler) string {
		var buf bytes.Buffer
		h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{
			Level: slog.LevelInfo,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey && len(groups) == 0 {
					return slog.Attr{}
				}
				return a
			},
		})
		log := slog.New(wrap(h))
		ctx := context.Background()
		log.InfoContext(ctx, "plain", "k", 1)
		l := log.With("attempt", 2).With("transaction_id", "tx-1")
		l.DebugContext(ctx, "not written", "k", 2)
		l.WarnContext(ctx, "with attrs", "err", "boom")
		g := l.WithGroup("g").With("inner", true)
		g.InfoContext(ctx, "grouped", "k", 3)
		l.With().InfoContext(ctx, "after an empty With")
		return buf.String()
	}
	direct := write(func(h slog.Handler) slog.Handler { return h })
	deferred := write(deferAttrs)
	if diff := cmp.Diff(direct, deferred); diff != "" {
		t.Errorf("lines through deferAttrs differ (-direct +deferred):\n%s", diff)
	}
	if !bytes.Contains([]byte(direct), []byte(`"g":{"inner":true,"k":3}`)) {
		t.Errorf("the check itself is wrong: %s", direct)
	}
}

// TestDeferredAttrsDoesNotShare: two loggers made With from one do not
// see each other's attributes.
func TestDeferredAttrsDoesNotShare(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(deferAttrs(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))).With("a", 1)
	one, two := log.With("b", 1), log.With("c", 1)
	one.Info("one")
	two.Info("two")
	want := "level=INFO msg=one a=1 b=1\nlevel=INFO msg=two a=1 c=1\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
