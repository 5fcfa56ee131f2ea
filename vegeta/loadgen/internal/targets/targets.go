// Package targets writes the requests of a load test as vegeta JSON targets:
// unique transactions shaped like the original project's load test, but with
// a mix of users, currencies, amounts and dates, so that the pipeline does
// the work real traffic would make it do (rates of many days and currencies,
// rounding to each currency's minor unit).
package targets

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// MaxRunLength bounds a run id, so that every transaction id stays short.
const MaxRunLength = 40

// MaxBatch is the most transactions the api takes in one batch request.
const MaxBatch = 1000

// Users is the size of the pool user ids are drawn from.
const Users = 50

// FirstDay and LastDay bound the transactions' timestamps: the days the
// built-in table of tools/ratesd has rates for, weekends included (a
// weekend's rate is the Friday's).
var (
	FirstDay = time.Date(2024, 9, 2, 0, 0, 0, 0, time.UTC)
	LastDay  = time.Date(2024, 9, 20, 0, 0, 0, 0, time.UTC)
)

// ErrBadRun is returned for a run id that is empty, too long, or holds
// characters other than ASCII letters, digits and '-'.
var ErrBadRun = errors.New("a run id is 1 to 40 ASCII letters, digits or '-'")

var runPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,40}$`)

// CheckRun returns an error wrapping ErrBadRun unless run is a valid run id.
// Valid ids need no escaping in a URL, in JSON or in a SQL LIKE pattern.
func CheckRun(run string) error {
	if !runPattern.MatchString(run) {
		return fmt.Errorf("run id %q: %w", run, ErrBadRun)
	}
	return nil
}

// IDPrefix returns the prefix every transaction id of the run starts with.
func IDPrefix(run string) string { return "load-" + run + "-" }

// currencyMix is the share, in percent, of each currency among the
// generated transactions; all are in tools/ratesd's built-in table.
var currencyMix = []struct {
	code    string
	percent int
}{
	{"USD", 30}, {"EUR", 20}, {"GBP", 15}, {"JPY", 10}, {"CHF", 10}, {"SEK", 8}, {"PLN", 7},
}

// Config says what to generate.
type Config struct {
	// URL is the api's base URL, such as http://127.0.0.1:8080.
	URL string
	// Run names the run; transaction ids are load-<Run>-<n>, n from 1.
	Run string
	// Batch is the number of transactions per request: 0 posts each to
	// POST /v1/transactions, 1..MaxBatch posts arrays of that many to
	// POST /v1/transactions/batch.
	Batch int
	// Seed makes the users, amounts, currencies and dates reproducible;
	// the ids do not depend on it.
	Seed uint64
	// APIKey, when set, is sent as Authorization: Bearer <APIKey>.
	APIKey string
}

// Generator makes the transactions and targets of one run. It is not safe
// for concurrent use.
type Generator struct {
	cfg        Config
	url        string
	header     map[string][]string
	currencies []txmodel.Currency // one entry per percent of the mix
	rnd        *rand.Rand
	next       uint64 // the number of the next transaction
}

// New returns a Generator for cfg, or an error when cfg is invalid.
func New(cfg Config) (*Generator, error) {
	if err := CheckRun(cfg.Run); err != nil {
		return nil, err
	}
	if cfg.Batch < 0 || cfg.Batch > MaxBatch {
		return nil, fmt.Errorf("batch %d: want 0 (one transaction per request) to %d", cfg.Batch, MaxBatch)
	}
	if cfg.URL == "" {
		return nil, errors.New("no api URL")
	}
	var currencies []txmodel.Currency
	for _, m := range currencyMix {
		c, err := txmodel.LookupCurrency(m.code)
		if err != nil {
			return nil, fmt.Errorf("currency mix: %w", err)
		}
		for range m.percent {
			currencies = append(currencies, c)
		}
	}
	path := "/v1/transactions"
	if cfg.Batch > 0 {
		path = "/v1/transactions/batch"
	}
	header := map[string][]string{"Content-Type": {"application/json"}}
	if cfg.APIKey != "" {
		header["Authorization"] = []string{"Bearer " + cfg.APIKey}
	}
	return &Generator{
		cfg:        cfg,
		url:        trimSlash(cfg.URL) + path,
		header:     header,
		currencies: currencies,
		rnd:        rand.New(rand.NewPCG(cfg.Seed, 0x7478706572736973)), //nolint:gosec // G404: seeded, so that a run's targets can be made again
		next:       1,
	}, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// Transaction returns the next transaction as a JSON object in the api's
// contract: transaction_id, user_id, amount (a JSON number with exactly the
// currency's minor digits), currency and timestamp.
func (g *Generator) Transaction() []byte {
	return g.appendTransaction(nil)
}

func (g *Generator) appendTransaction(b []byte) []byte {
	n := g.next
	g.next++
	c := g.currencies[g.rnd.IntN(len(g.currencies))]
	// Amounts from one minor unit to 10,000 major units (a million yen),
	// most of them small, as payments are.
	var units int64
	switch r := g.rnd.IntN(100); {
	case r < 70:
		units = 1 + g.rnd.Int64N(100_00)
	case r < 95:
		units = 1 + g.rnd.Int64N(1_000_00)
	default:
		units = 1 + g.rnd.Int64N(10_000_00)
	}
	if c.MinorUnit() == 0 {
		units /= 100
		if units == 0 {
			units = 1
		}
	}
	days := int(LastDay.Sub(FirstDay)/(24*time.Hour)) + 1
	ts := FirstDay.Add(time.Duration(g.rnd.Int64N(int64(days)*int64(24*time.Hour/time.Second))) * time.Second)

	b = append(b, `{"transaction_id":"`...)
	b = append(b, IDPrefix(g.cfg.Run)...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `","user_id":"user-`...)
	b = strconv.AppendInt(b, int64(1+g.rnd.IntN(Users)), 10)
	b = append(b, `","amount":`...)
	b = appendMinorUnits(b, units, c.MinorUnit())
	b = append(b, `,"currency":"`...)
	b = append(b, c.Code()...)
	b = append(b, `","timestamp":"`...)
	// Half with a zone, half without (UTC, as the original's clients sent).
	if n%2 == 0 {
		b = ts.AppendFormat(b, time.RFC3339)
	} else {
		b = ts.AppendFormat(b, "2006-01-02T15:04:05")
	}
	return append(b, `"}`...)
}

// appendMinorUnits appends units minor units as a decimal number with
// exactly minor fraction digits: 12345 and 2 give 123.45.
func appendMinorUnits(b []byte, units int64, minor int) []byte {
	s := strconv.FormatInt(units, 10)
	if minor == 0 {
		return append(b, s...)
	}
	for len(s) <= minor {
		s = "0" + s
	}
	b = append(b, s[:len(s)-minor]...)
	b = append(b, '.')
	return append(b, s[len(s)-minor:]...)
}

// Body returns the body of the next request: one transaction, or a JSON
// array of Batch transactions in batch mode.
func (g *Generator) Body() []byte {
	if g.cfg.Batch == 0 {
		return g.Transaction()
	}
	b := make([]byte, 0, g.cfg.Batch*160)
	b = append(b, '[')
	for i := range g.cfg.Batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = g.appendTransaction(b)
	}
	return append(b, ']')
}

// Target is one request in vegeta's JSON target format (vegeta attack
// -format=json): the body is base64 in JSON, as a []byte field encodes.
type Target struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header"`
	Body   []byte              `json:"body"`
}

// Target returns the next request as a vegeta target.
func (g *Generator) Target() Target {
	return Target{
		Method: "POST",
		URL:    g.url,
		Header: g.header,
		Body:   g.Body(),
	}
}

// WriteTargets writes count targets to w, one JSON object a line, or an
// endless stream when count is negative; it returns the first write error.
// The stream is built by hand, not through encoding/json, because it must
// keep ahead of vegeta at tens of thousands of transactions a second.
func (g *Generator) WriteTargets(w io.Writer, count int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	url, err := json.Marshal(g.url)
	if err != nil {
		return fmt.Errorf("encode url: %w", err)
	}
	header, err := json.Marshal(g.header)
	if err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	head := append([]byte(`{"method":"POST","url":`), url...)
	head = append(head, `,"header":`...)
	head = append(head, header...)
	head = append(head, `,"body":"`...)
	var line []byte
	for i := int64(0); count < 0 || i < count; i++ {
		body := g.Body()
		line = append(line[:0], head...)
		line = base64.StdEncoding.AppendEncode(line, body)
		line = append(line, "\"}\n"...)
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("write target %d: %w", i+1, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write targets: %w", err)
	}
	return nil
}
