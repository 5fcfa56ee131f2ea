package pgkit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMigrateConcurrentReplicasApplyOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	fsys := fstest.MapFS{
		"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\n-- +goose Down\nDROP TABLE a;\n")},
		"00002_b.sql": {Data: []byte("-- +goose Up\nINSERT INTO a VALUES (2);\n-- +goose Down\nDELETE FROM a WHERE x = 2;\n")},
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pgkit.Migrate(context.Background(), url, fsys, ".", "test_schema_version", quiet)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM a").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("table a has %d rows, want 2: a migration ran more than once", n)
	}
}

func TestMigrateUnreachable(t *testing.T) {
	err := pgkit.Migrate(context.Background(), "postgres://postgres@127.0.0.1:1/x?connect_timeout=2", fstest.MapFS{
		"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")},
	}, ".", "v", quiet)
	if !errors.Is(err, pgkit.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err                  error
		unavailable, refused bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true, false},
		{&pgconn.PgError{Code: "08006"}, true, false},
		{&pgconn.PgError{Code: "53300"}, true, false},
		{&pgconn.PgError{Code: "23505"}, false, true},  // unique violation: the same write fails again
		{&pgconn.PgError{Code: "22008"}, false, true},  // datetime field overflow: a year PostgreSQL has not
		{&pgconn.PgError{Code: "22021"}, false, true},  // character not in repertoire: a NUL in text
		{&pgconn.PgError{Code: "42P01"}, false, false}, // undefined table: a bug or a deploy, not the data
		{&pgconn.PgError{Code: ""}, false, false},
		{fmt.Errorf("insert: %w", &pgconn.PgError{Code: "22P02"}), false, true},
		{context.DeadlineExceeded, true, false},
		{io.ErrUnexpectedEOF, true, false},
		{errors.New("other"), false, false},
	}
	for _, tt := range tests {
		err := pgkit.Classify(tt.err)
		if got := errors.Is(err, pgkit.ErrUnavailable); got != tt.unavailable {
			t.Errorf("Classify(%v) unavailable = %v, want %v", tt.err, got, tt.unavailable)
		}
		if got := errors.Is(err, pgkit.ErrRefused); got != tt.refused {
			t.Errorf("Classify(%v) refused = %v, want %v", tt.err, got, tt.refused)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("Classify(%v) = %v, which no longer wraps it", tt.err, err)
		}
		if again := pgkit.Classify(err); again.Error() != err.Error() {
			t.Errorf("Classify twice = %q, want %q", again, err)
		}
	}
	if pgkit.Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}

func TestNewPoolMaxConnsOutOfRange(t *testing.T) {
	for _, n := range []int{-1, 0, math.MaxInt32 + 1, 1<<32 + 16} { // the last one wrapped to 16
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			pool, err := pgkit.NewPool(context.Background(), "postgres://postgres@127.0.0.1:5432/postgres", n)
			if err == nil {
				pool.Close()
				t.Fatalf("NewPool(%d connections) = nil error, want one: the size does not fit pgxpool's int32", n)
			}
		})
	}
}

func TestNewPoolCancelsAnAbandonedQueryOnTheServer(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgkit.NewPool(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	// A marker in the query finds its backend in pg_stat_activity.
	if _, err := pool.Exec(short, `SELECT pg_sleep(60) /* abandoned-by-its-client */`); err == nil {
		t.Fatal("a 60 s sleep returned within 200 ms")
	}
	watcher, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(ctx)
	// Without the cancel request the server sleeps the whole minute.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var running int
		if err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE '%abandoned-by-its-client%' AND pid <> pg_backend_pid()`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still runs the query 20 s after its client gave up on it")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
