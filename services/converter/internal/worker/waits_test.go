package worker

import (
	"sync"
	"testing"
	"time"
)

func TestWaitTracker(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2024, 9, 11, 6, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	w := newWaitTracker(15*time.Minute, clock)
	check := func(wantN int, wantAge time.Duration) {
		t.Helper()
		n, age := w.read()
		if n != wantN || age != wantAge {
			t.Errorf("at %s: %d waiting, oldest %s; want %d, %s", clock().Format("15:04"), n, age, wantN, wantAge)
		}
	}
	check(0, 0)
	received := clock().Add(-time.Hour)
	// Three transactions wait; each comes back every 15 minutes.
	for range 3 {
		w.add(received)
	}
	check(3, time.Hour)
	for i := range 4 {
		advance(15 * time.Minute)
		w.add(received)
		w.add(received.Add(time.Minute))
		if i < 2 {
			w.add(received.Add(2 * time.Minute))
		}
	}
	// Two are left in the last complete window and the current one.
	check(2, 2*time.Hour)
	// Converted: nothing comes back. Within two windows the figures are 0.
	advance(15 * time.Minute)
	check(2, 2*time.Hour+15*time.Minute)
	advance(15 * time.Minute)
	check(0, 0)
	// A long pause forgets everything at once.
	w.add(clock())
	advance(3 * time.Hour)
	check(0, 0)
}
