package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Target.Code() != "EUR" || c.RatesURL != DefaultRatesURL || c.AdminAddr != ":8082" || c.RatesProvider != "frankfurter" {
		t.Errorf("defaults = %+v", c)
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 8 * time.Minute}, c.RetryDelays); diff != "" {
		t.Errorf("retry delays (-want +got):\n%s", diff)
	}
}

func TestLoadNamesBadVariables(t *testing.T) {
	vars := map[string]string{"TARGET_CURRENCY": "XAU", "RATES_PROVIDER": "ecb", "RETRY_DELAYS": "5s,soon", "AMQP_URL": "http://x"}
	_, err := Load(func(k string) string { return vars[k] })
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for name := range vars {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestLogValueMasksPasswords(t *testing.T) {
	vars := map[string]string{"DATABASE_URL": "postgres://u:pg-secret@db/tx", "AMQP_URL": "amqp://u:mq-secret@mq/"}
	c, err := Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s := c.LogValue().String(); strings.Contains(s, "pg-secret") || strings.Contains(s, "mq-secret") {
		t.Errorf("secrets in %s", s)
	}
}
