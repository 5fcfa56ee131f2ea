package ecb

import (
	"bytes"
	"context"
	_ "embed" // for the built-in table
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// builtinCSV is fifteen business days of real ECB rates, 2024-09-02 to
// 2024-09-20, for the 30 currencies the ECB quoted then; it lets ratesd run
// with no data source at all.
//
//go:embed builtin.csv
var builtinCSV []byte

// Builtin returns the built-in table (2024-09-02 to 2024-09-20).
func Builtin() (*Table, error) {
	t, err := ParseCSV(bytes.NewReader(builtinCSV))
	if err != nil {
		return nil, fmt.Errorf("built-in table: %w", err)
	}
	return t, nil
}

// maxDownload bounds a downloaded rates file; the ECB's largest is ~2 MB
// zipped and ~15 MB as XML.
const maxDownload = 64 << 20

// Load reads the table from source: "" for the built-in table, an http(s)
// URL (fetched with hc, which should have a timeout), or a file path. The
// format is told by content (see Parse). A nil hc means a client with a
// one-minute timeout.
func Load(ctx context.Context, source string, hc *http.Client) (*Table, error) {
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	switch {
	case source == "":
		return Builtin()
	case strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://"):
		return download(ctx, source, hc)
	default:
		f, err := os.Open(source)
		if err != nil {
			return nil, fmt.Errorf("open rates file: %w", err)
		}
		defer f.Close() //nolint:errcheck // read only: Close loses nothing
		t, err := Parse(f)
		if err != nil {
			return nil, fmt.Errorf("rates file %s: %w", source, err)
		}
		return t, nil
	}
}

func download(ctx context.Context, url string, hc *http.Client) (*Table, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("rates URL %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download rates: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download rates from %s: %s", url, resp.Status)
	}
	// Read it all first so a truncated download is not parsed as a short file.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("download rates from %s: %w", url, err)
	}
	if len(body) > maxDownload {
		return nil, fmt.Errorf("download rates from %s: larger than %d bytes", url, maxDownload)
	}
	t, err := Parse(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("rates from %s: %w", url, err)
	}
	return t, nil
}
