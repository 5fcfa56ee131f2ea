package targets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// now is the day after the last one the generator dates transactions on.
var now = time.Date(2024, 9, 21, 0, 0, 0, 0, time.UTC)

// decodeTargets reads every line of out as a vegeta JSON target.
func decodeTargets(t *testing.T, out []byte) []Target {
	t.Helper()
	var ts []Target
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var tg Target
		if err := dec.Decode(&tg); err != nil {
			t.Fatalf("line %d %q: %v", len(ts)+1, sc.Text(), err)
		}
		ts = append(ts, tg)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ts
}

func writeTargets(t *testing.T, cfg Config, n int64) []Target {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := g.WriteTargets(&out, n); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		t.Error("the last target does not end its line")
	}
	return decodeTargets(t, out.Bytes())
}

// checkTransactions parses each body as the api would and checks the ids are
// the run's, numbered from 1 without a gap or a repeat.
func checkTransactions(t *testing.T, run string, bodies [][]byte) []txmodel.Transaction {
	t.Helper()
	var txs []txmodel.Transaction
	for i, body := range bodies {
		tx, err := txmodel.ParseTransaction(body, now)
		if err != nil {
			t.Fatalf("transaction %d %s: %v", i+1, body, err)
		}
		if want := IDPrefix(run) + strconv.Itoa(i+1); tx.ID != want {
			t.Errorf("transaction %d: id %q, want %q", i+1, tx.ID, want)
		}
		txs = append(txs, tx)
	}
	return txs
}

func TestSingleTargets(t *testing.T) {
	t.Parallel()
	const n = 2000
	ts := writeTargets(t, Config{URL: "http://127.0.0.1:8080/", Run: "r1", Seed: 7}, n)
	if len(ts) != n {
		t.Fatalf("%d targets, want %d", len(ts), n)
	}
	var bodies [][]byte
	for i, tg := range ts {
		want := Target{
			Method: "POST", URL: "http://127.0.0.1:8080/v1/transactions",
			Header: map[string][]string{"Content-Type": {"application/json"}}, Body: tg.Body,
		}
		if diff := cmp.Diff(want, tg); diff != "" {
			t.Fatalf("target %d (-want +got):\n%s", i+1, diff)
		}
		bodies = append(bodies, tg.Body)
	}
	txs := checkTransactions(t, "r1", bodies)

	// The mix: every currency of the table, a pool of users, dates over the
	// whole range including weekends, amounts with the currency's minor
	// digits (ParseTransaction rejects more; check none has fewer either).
	currencies := map[string]int{}
	users := map[string]bool{}
	days := map[string]bool{}
	weekend := 0
	for i, tx := range txs {
		c := tx.Amount.Currency
		currencies[c.Code()]++
		users[tx.UserID] = true
		days[tx.Timestamp.Format(time.DateOnly)] = true
		if wd := tx.Timestamp.Weekday(); wd == time.Saturday || wd == time.Sunday {
			weekend++
		}
		if tx.Timestamp.Before(FirstDay) || !tx.Timestamp.Before(LastDay.AddDate(0, 0, 1)) {
			t.Errorf("transaction %d: timestamp %s outside %s..%s", i+1, tx.Timestamp, FirstDay, LastDay)
		}
		var raw struct {
			Amount json.Number `json:"amount"`
		}
		if err := json.Unmarshal(bodies[i], &raw); err != nil {
			t.Fatal(err)
		}
		digits := 0
		if dot := strings.IndexByte(raw.Amount.String(), '.'); dot >= 0 {
			digits = len(raw.Amount.String()) - dot - 1
		}
		if digits != c.MinorUnit() {
			t.Errorf("transaction %d: amount %s in %s has %d fraction digits, want %d", i+1, raw.Amount, c.Code(), digits, c.MinorUnit())
		}
	}
	for _, m := range currencyMix {
		if currencies[m.code] == 0 {
			t.Errorf("no transaction in %s among %d", m.code, n)
		}
	}
	if len(currencies) != len(currencyMix) {
		t.Errorf("currencies %v, want only those of the mix", currencies)
	}
	if len(users) < 2 || len(users) > Users {
		t.Errorf("%d distinct users, want 2 to %d", len(users), Users)
	}
	if len(days) != 19 {
		t.Errorf("transactions on %d distinct days, want all 19 of 2024-09-02..2024-09-20", len(days))
	}
	if weekend == 0 {
		t.Error("no transaction on a weekend")
	}
}

func TestBatchTargets(t *testing.T) {
	t.Parallel()
	ts := writeTargets(t, Config{URL: "http://127.0.0.1:8080", Run: "b-2", Batch: 25}, 8)
	if len(ts) != 8 {
		t.Fatalf("%d targets, want 8", len(ts))
	}
	var bodies [][]byte
	for i, tg := range ts {
		if tg.URL != "http://127.0.0.1:8080/v1/transactions/batch" || tg.Method != "POST" {
			t.Fatalf("target %d: %s %s", i+1, tg.Method, tg.URL)
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(tg.Body, &elems); err != nil {
			t.Fatalf("target %d: body is not a JSON array: %v", i+1, err)
		}
		if len(elems) != 25 {
			t.Fatalf("target %d: %d transactions, want 25", i+1, len(elems))
		}
		for _, e := range elems {
			bodies = append(bodies, e)
		}
	}
	checkTransactions(t, "b-2", bodies)
}

func TestSameSeedSameTransactions(t *testing.T) {
	t.Parallel()
	a := writeTargets(t, Config{URL: "http://x", Run: "r", Seed: 1}, 50)
	b := writeTargets(t, Config{URL: "http://x", Run: "r", Seed: 1}, 50)
	c := writeTargets(t, Config{URL: "http://x", Run: "r", Seed: 2}, 50)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different targets (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, c) {
		t.Error("different seeds, same targets")
	}
}

func TestTransactionMatchesTarget(t *testing.T) {
	t.Parallel()
	// The hand-built lines of WriteTargets carry what Target says.
	g1, _ := New(Config{URL: "http://x", Run: "r", Batch: 3, Seed: 5, APIKey: "k\"1"})
	g2, _ := New(Config{URL: "http://x", Run: "r", Batch: 3, Seed: 5, APIKey: "k\"1"})
	var out bytes.Buffer
	if err := g1.WriteTargets(&out, 2); err != nil {
		t.Fatal(err)
	}
	got := decodeTargets(t, out.Bytes())
	want := []Target{g2.Target(), g2.Target()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-Target +WriteTargets):\n%s", diff)
	}
	if auth := got[0].Header["Authorization"]; len(auth) != 1 || auth[0] != "Bearer k\"1" {
		t.Errorf("Authorization %q, want the API key as a bearer token", auth)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"empty run", Config{URL: "http://x"}, ErrBadRun},
		{"LIKE wildcard in run", Config{URL: "http://x", Run: "a_b"}, ErrBadRun},
		{"percent in run", Config{URL: "http://x", Run: "a%"}, ErrBadRun},
		{"long run", Config{URL: "http://x", Run: strings.Repeat("a", MaxRunLength+1)}, ErrBadRun},
		{"batch too big", Config{URL: "http://x", Run: "r", Batch: MaxBatch + 1}, nil},
		{"negative batch", Config{URL: "http://x", Run: "r", Batch: -1}, nil},
		{"no URL", Config{Run: "r"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted it")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want one wrapping %v", err, tt.want)
			}
		})
	}
	if _, err := New(Config{URL: "http://x", Run: strings.Repeat("a", MaxRunLength), Batch: MaxBatch}); err != nil {
		t.Errorf("longest run and biggest batch: %v", err)
	}
}

// failingWriter fails every write.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteTargetsReturnsWriteError(t *testing.T) {
	t.Parallel()
	g, _ := New(Config{URL: "http://x", Run: "r"})
	boom := errors.New("boom")
	// Endless: only the error can stop it.
	if err := g.WriteTargets(failingWriter{boom}, -1); !errors.Is(err, boom) {
		t.Errorf("error %v, want one wrapping %v", err, boom)
	}
}

func TestAppendMinorUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		units int64
		minor int
		want  string
	}{
		{12345, 2, "123.45"},
		{1, 2, "0.01"},
		{10, 2, "0.10"},
		{100, 2, "1.00"},
		{7, 0, "7"},
		{5, 3, "0.005"},
	}
	for _, tt := range tests {
		if got := string(appendMinorUnits(nil, tt.units, tt.minor)); got != tt.want {
			t.Errorf("appendMinorUnits(%d, %d) = %s, want %s", tt.units, tt.minor, got, tt.want)
		}
	}
}
