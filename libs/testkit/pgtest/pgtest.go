// Package pgtest gives each test a PostgreSQL database of its own on the
// real server, created for the test and dropped when it ends, so tests run
// in parallel and leave nothing behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultAdminURL is the server tests use when TEST_DATABASE_URL is unset.
// It works against both servers `make test` may find on 127.0.0.1:5432: a
// local PostgreSQL with trust authentication, which never asks for the
// password, and the docker compose one (docker-compose.yml), whose postgres
// user has the password postgres.
const DefaultAdminURL = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"

// EnvAdminURL names the environment variable that points the tests at
// another server: the URL of a role allowed to create databases.
const EnvAdminURL = "TEST_DATABASE_URL"

// AdminURL returns TEST_DATABASE_URL, or DefaultAdminURL.
func AdminURL() string {
	if u := os.Getenv(EnvAdminURL); u != "" {
		return u
	}
	return DefaultAdminURL
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// Schema prepares a database: a service's Migrate, such as schema.Migrate
// of services/api/schema or services/converter/schema.
type Schema func(ctx context.Context, databaseURL string, log *slog.Logger) error

// NewDatabase creates a database named after the test, applies schemas to
// it in order (none: it stays empty), drops it (closing its connections)
// when the test ends, and returns its URL. A test that reads another
// module's data prepares it with that module's schema, so the two cannot
// drift apart. When the server cannot be reached the test fails, saying
// what to start.
func NewDatabase(t testing.TB, schemas ...Schema) string {
	t.Helper()
	admin := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s: %v\n"+
			"start it (on Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; "+
			"with Docker: docker compose up -d --wait postgres) or set %s", redact(admin), err, EnvAdminURL)
	}
	defer conn.Close(ctx)

	name := dbName(t.Name())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})

	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvAdminURL, err)
	}
	u.Path = "/" + name
	quiet := slog.New(slog.DiscardHandler)
	for _, schema := range schemas {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := schema(ctx, u.String(), quiet)
		cancel()
		if err != nil {
			t.Fatalf("prepare test database %s: %v", name, err)
		}
	}
	return u.String()
}

// dbName makes a unique, valid database name from a test name.
func dbName(testName string) string {
	base := unsafeChars.ReplaceAllString(strings.ToLower(testName), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t_" + strings.Trim(base, "_") + "_" + hex.EncodeToString(b[:])
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
