package worker

import (
	"context"
	"log/slog"
	"slices"
)

// deferredAttrs is a slog.Handler that keeps the attributes given to With
// and hands them to the handler it wraps only with a record it writes.
//
// The worker makes a logger for each transaction (its attempt, id and
// tenant) and nearly always writes nothing with it: at LOG_LEVEL=warn a
// processed transaction logs no line. A JSON or text handler's WithAttrs
// formats the attributes at once, which cost the worker a tenth of its
// CPU (BenchmarkHandleBatch); here With only copies a slice.
type deferredAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

// deferAttrs wraps h; a handler already wrapped is returned as it is.
func deferAttrs(h slog.Handler) slog.Handler {
	if d, ok := h.(*deferredAttrs); ok {
		return d
	}
	return &deferredAttrs{h: h}
}

func (d *deferredAttrs) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, l)
}

// Handle writes r with the deferred attributes before its own, as
// h.WithAttrs(attrs).Handle(r) would.
func (d *deferredAttrs) Handle(ctx context.Context, r slog.Record) error {
	if len(d.attrs) == 0 {
		return d.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(d.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return d.h.Handle(ctx, out)
}

func (d *deferredAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return d
	}
	return &deferredAttrs{h: d.h, attrs: append(slices.Clip(d.attrs), attrs...)}
}

// WithGroup hands the deferred attributes on first: they belong outside
// the group.
func (d *deferredAttrs) WithGroup(name string) slog.Handler {
	if name == "" {
		return d
	}
	h := d.h
	if len(d.attrs) > 0 {
		h = h.WithAttrs(d.attrs)
	}
	return &deferredAttrs{h: h.WithGroup(name)}
}
