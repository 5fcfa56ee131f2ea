package worker

import (
	"sync"
	"time"
)

// waitTracker estimates, from the transactions parked in the wait queue,
// how many wait for their day's rate and how long the oldest of them has
// waited, in memory bounded whatever their number.
//
// A waiting transaction comes back once per wait delay and is parked
// again, so the parkings counted in one window of that length are the
// transactions waiting then. Two windows are kept, the current one and the
// last complete one: a transaction that stops waiting drops out of the
// figures within two windows. Each converter knows the transactions it
// parked; summed (the count) or maxed (the age) over converters, the
// figures are the pipeline's.
type waitTracker struct {
	mu        sync.Mutex
	window    time.Duration
	now       func() time.Time
	start     time.Time // of the current window
	cur, prev waitWindow
}

type waitWindow struct {
	n      int
	oldest time.Time // the earliest received_at parked in the window
}

func (w *waitWindow) add(receivedAt time.Time) {
	w.n++
	if w.oldest.IsZero() || receivedAt.Before(w.oldest) {
		w.oldest = receivedAt
	}
}

func newWaitTracker(window time.Duration, now func() time.Time) *waitTracker {
	return &waitTracker{window: window, now: now, start: now()}
}

// add counts a transaction received at receivedAt parked now.
func (w *waitTracker) add(receivedAt time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotate()
	w.cur.add(receivedAt)
}

// read returns how many transactions wait, and how long ago the oldest of
// them was received.
func (w *waitTracker) read() (int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotate()
	n := max(w.cur.n, w.prev.n)
	oldest := w.prev.oldest
	if oldest.IsZero() || (!w.cur.oldest.IsZero() && w.cur.oldest.Before(oldest)) {
		oldest = w.cur.oldest
	}
	if oldest.IsZero() {
		return n, 0
	}
	return n, max(w.now().Sub(oldest), 0)
}

func (w *waitTracker) rotate() {
	now := w.now()
	switch elapsed := now.Sub(w.start); {
	case elapsed >= 2*w.window:
		w.prev, w.cur, w.start = waitWindow{}, waitWindow{}, now
	case elapsed >= w.window:
		w.prev, w.cur, w.start = w.cur, waitWindow{}, w.start.Add(w.window)
	}
}
