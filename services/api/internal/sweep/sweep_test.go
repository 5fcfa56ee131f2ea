package sweep

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// rounds is a Store whose sweeps settle what each round of it says.
type rounds struct {
	settled [][3]int // processed, failed, messages
	err     error
	limits  []int
}

func (r *rounds) Sweep(_ context.Context, limit int) (int, int, int, error) {
	r.limits = append(r.limits, limit)
	if len(r.settled) == 0 {
		return 0, 0, 0, r.err
	}
	s := r.settled[0]
	r.settled = r.settled[1:]
	return s[0], s[1], s[2], nil
}

func TestOnceSweepsUntilARoundIsShort(t *testing.T) {
	st := &rounds{settled: [][3]int{{8, 2, 0}, {10, 0, 4}, {3, 1, 1}, {10, 0, 0}}}
	m := telemetry.NewMetrics("t")
	woken := 0
	w := New(st, 0, 10, slog.New(slog.NewTextHandler(io.Discard, nil)), m, func() { woken++ })
	if err := w.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{10, 10, 10}, st.limits); diff != "" {
		t.Errorf("rounds (-want +got):\n%s", diff)
	}
	if p, f := w.processed.Get(), w.failed.Get(); p != 21 || f != 3 {
		t.Errorf("counted %d processed and %d failed, want 21 and 3", p, f)
	}
	if n := w.messages.Get(); n != 5 || woken != 2 {
		t.Errorf("counted %d messages and woke the sender %d times, want 5 and 2 (once a round with news)", n, woken)
	}
}

func TestOnceReturnsTheStoresError(t *testing.T) {
	st := &rounds{err: errors.New("database unavailable")}
	w := New(st, 0, 10, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("t"), nil)
	if err := w.Once(context.Background()); !errors.Is(err, st.err) {
		t.Errorf("Once = %v, want the store's error", err)
	}
}
