package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/txclient"
)

// TestTxclient uses libs/txclient against the real stack, through the
// contract-checking client: create, replay, conflict, invalid, batch, read
// back processed, list every page.
func TestTxclient(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	ctx := context.Background()
	c := txclient.New(s.api, txclient.WithHTTPClient(s.client))
	tx := func(id, amount string) txclient.Transaction {
		return txclient.Transaction{
			ID: id, UserID: "txclient-user", Amount: decimal.RequireFromString(amount), Currency: "USD",
			Timestamp: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC),
		}
	}

	res, created, err := c.Create(ctx, tx("txc-1", "100.0"))
	if err != nil || !created || res.Status != txclient.StatusReceived || res.Amount.StringFixed(2) != "100.00" {
		t.Fatalf("Create: %+v created=%v err=%v, want a received 100.00 created", res, created, err)
	}
	if _, created, err := c.Create(ctx, tx("txc-1", "100")); err != nil || created {
		t.Errorf("the same again: created=%v err=%v, want a replay (created=false)", created, err)
	}
	var p *txclient.Problem
	if _, _, err := c.Create(ctx, tx("txc-1", "100.01")); !errors.As(err, &p) || p.Status != 409 || p.Type != txclient.TypeConflict {
		t.Errorf("other content: err=%v, want a 409 conflict *Problem", err)
	}
	if _, _, err := c.Create(ctx, tx("txc-bad", "-1")); !errors.As(err, &p) || p.Status != 422 || len(p.Errors) != 1 || p.Errors[0].Code != "not_positive" {
		t.Errorf("negative amount: err=%v, want a 422 *Problem with not_positive", err)
	}

	results, err := c.CreateBatch(ctx, []txclient.Transaction{tx("txc-2", "1"), tx("txc-3", "2"), tx("txc-bad", "0.001")})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || !results[0].Created() || !results[1].Created() || results[2].Status != 422 || results[2].Problem == nil {
		t.Errorf("batch: %+v, want 201, 201, 422", results)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err = c.Get(ctx, "txc-1")
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != txclient.StatusReceived || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res.Status != txclient.StatusProcessed || !res.ConvertedAmount.Valid || res.ConvertedAmount.Decimal.String() != "90.56" ||
		res.TargetCurrency != "EUR" || res.ExchangeRate.Decimal.String() != "0.9055510278" || res.RateDate != "2024-09-11" ||
		res.ProcessedAt == nil || res.FailureReason != "" {
		t.Errorf("txc-1: %+v, want processed at 0.9055510278 to 90.56 EUR", res)
	}
	if _, err := c.Get(ctx, "nobody"); !errors.As(err, &p) || p.Status != 404 || p.Type != txclient.TypeNotFound {
		t.Errorf("Get(nobody): err=%v, want a 404 not-found *Problem", err)
	}

	var ids []string
	for r, err := range c.All(ctx, txclient.ListOptions{UserID: "txclient-user", Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	if diff := cmp.Diff([]string{"txc-1", "txc-2", "txc-3"}, ids); diff != "" {
		t.Errorf("All, a page at a time (-want +got):\n%s", diff)
	}
	if _, err := c.List(ctx, txclient.ListOptions{Status: "done"}); !errors.As(err, &p) || p.Status != 400 || p.Type != txclient.TypeInvalidQuery {
		t.Errorf("List(status=done): err=%v, want a 400 invalid-query *Problem", err)
	}
}

// TestTxclientRetriesRateLimited runs the api with a rate limit of one
// request a second, bursts of 2, and creates more transactions than that:
// the client waits out every 429's Retry-After and retries with the same
// transaction, so every one is created once.
func TestTxclientRetriesRateLimited(t *testing.T) {
	t.Parallel()
	const key = "txclient-key"
	s := start(t, options{apiKeys: "txclient:" + sha256Hex(key), apiEnv: []string{"RATE_LIMIT=1", "RATE_BURST=2"}})
	ctx := context.Background()
	c := txclient.New(s.api, txclient.WithHTTPClient(s.client), txclient.WithAPIKey(key),
		txclient.WithRetry(txclient.RetryPolicy{MaxAttempts: 10, MaxElapsed: time.Minute}))
	const n = 5
	for i := range n {
		id := fmt.Sprintf("txc-limited-%d", i)
		_, created, err := c.Create(ctx, txclient.Transaction{
			ID: id, UserID: "u", Amount: decimal.RequireFromString("1"), Currency: "EUR",
			Timestamp: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC),
		})
		if err != nil || !created {
			t.Fatalf("%s: created=%v err=%v, want created after waiting out the rate limit", id, created, err)
		}
	}
	if got := metric(t, s.apiAdmin, `txpersister_rate_limited_total{key="txclient"}`); got == 0 {
		t.Errorf("rate_limited_total = 0: the api never limited the client, the retries were not exercised")
	}
}
