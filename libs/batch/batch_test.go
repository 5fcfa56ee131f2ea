package batch_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/batch"
)

func TestBatcherGroupsConcurrentCalls(t *testing.T) {
	var batches, items atomic.Int64
	release := make(chan struct{})
	fn := func(_ context.Context, in []int) ([]int, error) {
		batches.Add(1)
		items.Add(int64(len(in)))
		<-release // the flusher is busy: the others queue up
		out := make([]int, len(in))
		for i, v := range in {
			out[i] = v * 10
		}
		return out, nil
	}
	b := batch.New(fn, batch.Config{Flushers: 1, MaxSize: 100})
	defer b.Close()

	const n = 50
	var wg sync.WaitGroup
	got := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.Do(context.Background(), i)
		}()
	}
	// Let every call queue while the first batch is held.
	deadline := time.Now().Add(10 * time.Second)
	for batches.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != i*10 {
			t.Errorf("call %d = %d, %v; want %d", i, got[i], errs[i], i*10)
		}
	}
	if items.Load() != n {
		t.Errorf("%d items written, want %d", items.Load(), n)
	}
	// The first call went alone; the 49 that queued meanwhile share batches.
	if batches.Load() > 3 {
		t.Errorf("%d batches for %d concurrent calls: they were not grouped", batches.Load(), n)
	}
}

func TestBatcherRespectsMaxSize(t *testing.T) {
	var biggest atomic.Int64
	fn := func(_ context.Context, in []int) ([]int, error) {
		for {
			b := biggest.Load()
			if int64(len(in)) <= b || biggest.CompareAndSwap(b, int64(len(in))) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		return in, nil
	}
	b := batch.New(fn, batch.Config{Flushers: 2, MaxSize: 7, Window: time.Millisecond})
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := b.Do(context.Background(), i); err != nil || v != i {
				t.Errorf("Do(%d) = %d, %v", i, v, err)
			}
		}()
	}
	wg.Wait()
	if biggest.Load() > 7 {
		t.Errorf("a batch held %d items, more than MaxSize 7", biggest.Load())
	}
}

func TestBatcherErrorsAndCancellation(t *testing.T) {
	boom := errors.New("boom")
	b := batch.New(func(context.Context, []int) ([]int, error) { return nil, boom }, batch.Config{})
	if _, err := b.Do(context.Background(), 1); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the batch's error", err)
	}
	b.Close()
	if _, err := b.Do(context.Background(), 1); !errors.Is(err, batch.ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrBatcherClosed", err)
	}

	var written atomic.Int64
	slow := batch.New(func(_ context.Context, in []int) ([]int, error) {
		written.Add(int64(len(in)))
		return in, nil
	}, batch.Config{})
	defer slow.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := slow.Do(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: err = %v", err)
	}
	if written.Load() != 0 {
		t.Errorf("a call cancelled before its batch was written anyway")
	}
}

func TestBatcherCloseFlushesQueuedCalls(t *testing.T) {
	release := make(chan struct{})
	var written atomic.Int64
	b := batch.New(func(_ context.Context, in []int) ([]int, error) {
		<-release
		written.Add(int64(len(in)))
		return in, nil
	}, batch.Config{Flushers: 1, MaxSize: 2})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Do(context.Background(), i); err != nil {
				t.Errorf("Do(%d): %v", i, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	close(release)
	wg.Wait()
	<-closed
	if written.Load() != 6 {
		t.Errorf("%d of 6 queued calls written by Close", written.Load())
	}
}

func BenchmarkBatcher(b *testing.B) {
	bt := batch.New(func(_ context.Context, in []int) ([]int, error) { return in, nil }, batch.Config{Flushers: 2, MaxSize: 100})
	defer bt.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bt.Do(context.Background(), 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
