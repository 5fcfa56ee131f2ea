package pgtest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
)

func TestNewDatabaseIsEmptyAndOwn(t *testing.T) {
	var first string
	t.Run("create", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect to the test database: %v", err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&first); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	// After the subtest's cleanup, its database is gone.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", first).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after the test", first)
	}
}

// The database URL carries the admin URL's user and password, so that code
// under test logs in to a server that asks for the password (the compose
// PostgreSQL) the way the helper did.
func TestNewDatabaseKeepsCredentials(t *testing.T) {
	admin, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	got, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	if got.User.String() != admin.User.String() || got.Host != admin.Host || got.RawQuery != admin.RawQuery {
		t.Errorf("database URL %s does not keep the user, host and options of %s", got.Redacted(), admin.Redacted())
	}
	if got.Path == admin.Path {
		t.Errorf("database URL %s names the admin database", got.Redacted())
	}
}

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestNewDatabaseFailsWhenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	t.Setenv(pgtest.EnvAdminURL, "postgres://postgres:s3cret@"+addr+"/postgres?sslmode=disable&connect_timeout=5")

	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pgtest.NewDatabase(f)
	}()
	<-done
	for _, want := range []string{"not reachable at postgres://postgres:xxxxx@" + addr, "docker compose up -d --wait postgres", pgtest.EnvAdminURL} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("NewDatabase failed with %q, want it to contain %q", f.msg, want)
		}
	}
	if strings.Contains(f.msg, "s3cret") {
		t.Errorf("NewDatabase's message %q shows the password", f.msg)
	}
}

func TestNewDatabaseAppliesTheSchemasInOrder(t *testing.T) {
	var order []string
	schema := func(name string) pgtest.Schema {
		return func(ctx context.Context, databaseURL string, _ *slog.Logger) error {
			order = append(order, name)
			conn, err := pgx.Connect(ctx, databaseURL)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "CREATE TABLE "+name+" (x int)")
			return err
		}
	}
	url := pgtest.NewDatabase(t, schema("first"), schema("second"))
	if fmt.Sprint(order) != "[first second]" {
		t.Errorf("schemas applied in the order %v", order)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM first, second").Scan(&n); err != nil {
		t.Errorf("the schemas' tables: %v", err)
	}
}
