package refresh

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/txpersister/txpersister/tools/ratesd/internal/ecb"
)

func table(t *testing.T, latest string) *ecb.Table {
	t.Helper()
	tb, err := ecb.ParseCSV(strings.NewReader("Date,USD,\n" + latest + ",1.1043,\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestReloadKeepsTheLastGoodTable(t *testing.T) {
	now := time.Date(2024, 9, 12, 15, 0, 0, 0, time.UTC)
	answers := []struct {
		table *ecb.Table
		err   error
	}{
		{table(t, "2024-09-11"), nil},
		{nil, errors.New("download rates: 503 Service Unavailable")},
		{table(t, "2024-09-12"), nil},
	}
	n := 0
	load := func(context.Context) (*ecb.Table, error) {
		a := answers[n]
		n++
		return a.table, a.err
	}
	tb, err := New(context.Background(), load, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	latest := func() string { return tb.Table().Latest().Date.Format(time.DateOnly) }
	if latest() != "2024-09-11" {
		t.Fatalf("first load: latest %s", latest())
	}
	now = now.Add(time.Hour)
	if err := tb.Reload(context.Background()); err == nil {
		t.Fatal("a failed load reported no error")
	}
	if latest() != "2024-09-11" {
		t.Errorf("after a failed load: latest %s, want the last good 2024-09-11", latest())
	}
	if st := tb.Status(); !st.Failed.Equal(now) || !strings.Contains(st.Err, "503") || st.Loaded.Equal(now) {
		t.Errorf("status after a failed load: %+v", st)
	}
	now = now.Add(time.Hour)
	if err := tb.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if latest() != "2024-09-12" {
		t.Errorf("after a good load: latest %s", latest())
	}
	if st := tb.Status(); !st.Loaded.Equal(now) || st.Err != "" || !st.Failed.IsZero() {
		t.Errorf("status after a good load: %+v", st)
	}
}

func TestNewFailsWithoutATable(t *testing.T) {
	_, err := New(context.Background(), func(context.Context) (*ecb.Table, error) { return nil, errors.New("no file") },
		time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err == nil {
		t.Fatal("New without a table succeeded")
	}
}
