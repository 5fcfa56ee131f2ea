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
	if c.Rule.Kind != "day" || c.Rule.MaxAgeDays != 5 || c.Rule.Publication.String() != "16:00 Europe/Berlin" || c.PendingRetry != 15*time.Minute {
		t.Errorf("rule %+v (%s), pending retry %s", c.Rule, c.Rule.Publication, c.PendingRetry)
	}
}

func TestLoadRule(t *testing.T) {
	vars := map[string]string{"RATE_RULE": "as-of", "RATES_PUBLISHED_AT": "14:15 UTC", "RATES_MAX_AGE_DAYS": "0", "RATES_PENDING_RETRY": "90s"}
	c, err := Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Rule.Kind != "as-of" || c.Rule.MaxAgeDays != 0 || c.Rule.Publication.String() != "14:15 UTC" || c.PendingRetry != 90*time.Second {
		t.Errorf("rule %+v (%s), pending retry %s", c.Rule, c.Rule.Publication, c.PendingRetry)
	}
}

func TestLoadNamesBadVariables(t *testing.T) {
	vars := map[string]string{
		"TARGET_CURRENCY": "XAU", "RATES_PROVIDER": "ecb", "RETRY_DELAYS": "5s,soon", "AMQP_URL": "http://x",
		"RATE_RULE": "latest", "RATES_PUBLISHED_AT": "16:00 Atlantis", "RATES_MAX_AGE_DAYS": "-1", "RATES_PENDING_RETRY": "10ms",
	}
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
