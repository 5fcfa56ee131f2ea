package config

import (
	"strings"
	"testing"
	"time"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(getenv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != DefaultDatabaseURL || c.AMQPURL != DefaultAMQPURL || c.HTTPAddr != ":8080" || c.AdminAddr != ":8081" || c.RequestTimeout != 5*time.Second {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	_, err := Load(getenv(map[string]string{
		"DATABASE_URL":      "mysql://x",
		"DB_MAX_CONNS":      "many",
		"REQUEST_TIMEOUT":   "-1s",
		"LOG_LEVEL":         "loud",
		"OUTBOX_BATCH_SIZE": "0",
	}))
	if err == nil {
		t.Fatal("Load accepted bad values")
	}
	for _, name := range []string{"DATABASE_URL", "DB_MAX_CONNS", "REQUEST_TIMEOUT", "LOG_LEVEL", "OUTBOX_BATCH_SIZE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLogValueMasksPasswords(t *testing.T) {
	c, err := Load(getenv(map[string]string{
		"DATABASE_URL": "postgres://app:s3cret-db@db:5432/tx",
		"AMQP_URL":     "amqp://app:s3cret-mq@mq:5672/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	logged := c.LogValue().String()
	for _, secret := range []string{"s3cret-db", "s3cret-mq"} {
		if strings.Contains(logged, secret) {
			t.Errorf("logged configuration shows %q: %s", secret, logged)
		}
	}
	if !strings.Contains(logged, "app:xxxxx@db:5432") {
		t.Errorf("logged configuration lost the user and host: %s", logged)
	}
}
