package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/txpersister/txpersister/services/api/internal/auth"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(getenv(map[string]string{"AUTH_DISABLED": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != DefaultDatabaseURL || c.AMQPURL != DefaultAMQPURL || c.HTTPAddr != ":8080" || c.AdminAddr != ":8081" || c.RequestTimeout != 5*time.Second ||
		c.InflightBytes != 2<<20 || c.QueueWait != time.Second {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadRefusesToRunOpenByAccident(t *testing.T) {
	c, err := Load(getenv(nil))
	if err != nil {
		t.Fatalf("Load without keys (as api migrate runs): %v", err)
	}
	if err := c.CheckAccess(); err == nil || !strings.Contains(err.Error(), "API_KEYS") || !strings.Contains(err.Error(), "AUTH_DISABLED") {
		t.Errorf("no keys and auth not disabled: err = %v, want a refusal naming API_KEYS and AUTH_DISABLED", err)
	}
	if _, err := Load(getenv(map[string]string{"API_KEYS": "alice:nothex"})); err == nil || !strings.Contains(err.Error(), "API_KEYS") {
		t.Errorf("bad key: err = %v", err)
	}
	if _, err := Load(getenv(map[string]string{"API_KEYS_FILE": "/nonexistent/keys"})); err == nil || !strings.Contains(err.Error(), "API_KEYS_FILE") {
		t.Errorf("missing key file: err = %v", err)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	_, err := Load(getenv(map[string]string{
		"DATABASE_URL":          "mysql://x",
		"DB_MAX_CONNS":          "many",
		"REQUEST_TIMEOUT":       "-1s",
		"LOG_LEVEL":             "loud",
		"OUTBOX_BATCH_SIZE":     "0",
		"INGEST_INFLIGHT_BYTES": "65536",
	}))
	if err == nil {
		t.Fatal("Load accepted bad values")
	}
	for _, name := range []string{"DATABASE_URL", "DB_MAX_CONNS", "REQUEST_TIMEOUT", "LOG_LEVEL", "OUTBOX_BATCH_SIZE", "INGEST_INFLIGHT_BYTES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte("ops:"+auth.HashKey("file-key-secret")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(getenv(map[string]string{
		"DATABASE_URL":  "postgres://app:s3cret-db@db:5432/tx?sslmode=disable&password=s3cret-query",
		"AMQP_URL":      "amqp://app:s3cret-mq@mq:5672/,amqp://app:s3cret-mq2@mq2:5672/",
		"API_KEYS":      "alice:" + auth.HashKey("alice-key-secret") + ",acme:ci:" + auth.HashKey("ci-key-secret"),
		"API_KEYS_FILE": keyFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 3 {
		t.Fatalf("keys = %d, want alice's and the file's", len(c.Keys))
	}
	// Printed as the service prints it at start, through a JSON logger.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	logged := buf.String()
	if !strings.Contains(logged, "alice:alice") || !strings.Contains(logged, "ops:ops") || !strings.Contains(logged, "acme:ci") {
		t.Errorf("logged configuration lost the key names: %s", logged)
	}
	for _, secret := range []string{"s3cret-db", "s3cret-query", "s3cret-mq", "s3cret-mq2", "ci-key-secret", auth.HashKey("ci-key-secret"), "alice-key-secret", "file-key-secret", auth.HashKey("alice-key-secret"), auth.HashKey("file-key-secret")} {
		if strings.Contains(logged, secret) {
			t.Errorf("logged configuration shows %q: %s", secret, logged)
		}
	}
	if !strings.Contains(logged, "app:xxxxx@db:5432") {
		t.Errorf("logged configuration lost the user and host: %s", logged)
	}
	if !strings.Contains(logged, "amqp://app:xxxxx@mq:5672/,amqp://app:xxxxx@mq2:5672/") {
		t.Errorf("logged configuration lost a broker node: %s", logged)
	}
}
