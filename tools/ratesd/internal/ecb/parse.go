package ecb

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Parse reads an ECB rates file in any of the published forms, told apart
// by content: the history CSV (eurofxref-hist.csv, or the one-day
// eurofxref.csv), the XML (eurofxref-daily.xml, eurofxref-hist-90d.xml,
// eurofxref-hist.xml), or a zip holding one of them (eurofxref-hist.zip).
func Parse(r io.Reader) (*Table, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read rates: %w", err)
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return parseZip(br)
	case bytes.HasPrefix(trimmed, []byte("<")):
		return ParseXML(br)
	case bytes.HasPrefix(bytes.ToLower(trimmed), []byte("date")):
		return ParseCSV(br)
	default:
		return nil, fmt.Errorf("rates file is neither the ECB CSV, XML nor zip (starts %q)", trimmed[:min(len(trimmed), 20)])
	}
}

// maxZipEntry bounds what is read from a zip entry: the full history CSV is
// under 2 MB.
const maxZipEntry = 64 << 20

func parseZip(r io.Reader) (*Table, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxZipEntry))
	if err != nil {
		return nil, fmt.Errorf("read zip: %w", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("open zip: %w", err)
	}
	for _, f := range zr.File {
		name := strings.ToLower(f.Name)
		if !strings.HasSuffix(name, ".csv") && !strings.HasSuffix(name, ".xml") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("open %s in zip: %w", f.Name, err)
		}
		defer rc.Close()
		t, err := Parse(io.LimitReader(rc, maxZipEntry))
		if err != nil {
			return nil, fmt.Errorf("%s in zip: %w", f.Name, err)
		}
		return t, nil
	}
	return nil, errors.New("zip holds no .csv or .xml file")
}

// ParseCSV reads the ECB's CSV: a header "Date,USD,JPY,..." (read by name,
// since the ECB has changed the column order over time), then one row per
// business day with units per EUR, "N/A" or empty where none was published,
// and a trailing comma. Dates are 2006-01-02 (history file) or 02 January
// 2006 (one-day file); spaces around fields are ignored.
func ParseCSV(r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	codes := make([]string, len(header)) // "" for the date and empty columns
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.ToUpper(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch {
		case i == 0:
			if h != "DATE" {
				return nil, fmt.Errorf("CSV header starts %q, want Date", header[0])
			}
		case h == "":
			// The trailing comma makes an empty last column.
		case !txmodel.IsCurrencyCode(h):
			return nil, fmt.Errorf("CSV header column %d: %q is not a currency code", i+1, h)
		case seen[h]:
			return nil, fmt.Errorf("CSV header: currency %s appears twice", h)
		default:
			seen[h] = true
			codes[i] = h
		}
	}

	var days []Day
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		date, err := parseCSVDate(strings.TrimSpace(rec[0]))
		if err != nil {
			return nil, fmt.Errorf("CSV line %d: %w", line, err)
		}
		rates := make(map[string]decimal.Decimal, len(rec))
		for i := 1; i < len(rec); i++ {
			v := strings.TrimSpace(rec[i])
			if v == "" || strings.EqualFold(v, "N/A") {
				continue
			}
			if i >= len(codes) || codes[i] == "" {
				return nil, fmt.Errorf("CSV line %d: value %q in column %d has no currency in the header", line, v, i+1)
			}
			d, err := parseRate(v)
			if err != nil {
				return nil, fmt.Errorf("CSV line %d, %s: %w", line, codes[i], err)
			}
			rates[codes[i]] = d
		}
		days = append(days, NewDay(date, rates))
	}
	t, err := NewTable(days)
	if err != nil {
		return nil, fmt.Errorf("CSV: %w", err)
	}
	return t, nil
}

func parseCSVDate(s string) (time.Time, error) {
	for _, layout := range []string{time.DateOnly, "02 January 2006", "2 January 2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
}

// ecbEnvelope is the gesmes envelope of the ECB's XML files; the element
// names match in any namespace.
type ecbEnvelope struct {
	Cube struct {
		Days []struct {
			Time  string `xml:"time,attr"`
			Rates []struct {
				Currency string `xml:"currency,attr"`
				Rate     string `xml:"rate,attr"`
			} `xml:"Cube"`
		} `xml:"Cube"`
	} `xml:"Cube"`
}

// ParseXML reads the ECB's XML: the daily file (one dated Cube) or the
// 90-day and history files (several), each
// <Cube time="2025-05-09"><Cube currency="USD" rate="1.1252"/>...</Cube>.
func ParseXML(r io.Reader) (*Table, error) {
	var env ecbEnvelope
	if err := xml.NewDecoder(r).Decode(&env); err != nil {
		return nil, fmt.Errorf("read XML: %w", err)
	}
	days := make([]Day, 0, len(env.Cube.Days))
	for _, xd := range env.Cube.Days {
		date, err := time.Parse(time.DateOnly, strings.TrimSpace(xd.Time))
		if err != nil {
			return nil, fmt.Errorf("XML Cube time %q is not YYYY-MM-DD", xd.Time)
		}
		rates := make(map[string]decimal.Decimal, len(xd.Rates))
		for _, xr := range xd.Rates {
			code := strings.ToUpper(strings.TrimSpace(xr.Currency))
			if !txmodel.IsCurrencyCode(code) {
				return nil, fmt.Errorf("XML %s: %q is not a currency code", xd.Time, xr.Currency)
			}
			if _, dup := rates[code]; dup {
				return nil, fmt.Errorf("XML %s: currency %s appears twice", xd.Time, code)
			}
			d, err := parseRate(strings.TrimSpace(xr.Rate))
			if err != nil {
				return nil, fmt.Errorf("XML %s, %s: %w", xd.Time, code, err)
			}
			rates[code] = d
		}
		days = append(days, NewDay(date, rates))
	}
	t, err := NewTable(days)
	if err != nil {
		return nil, fmt.Errorf("XML: %w", err)
	}
	return t, nil
}

func parseRate(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("rate %q is not a number", s)
	}
	if !d.IsPositive() {
		return decimal.Decimal{}, fmt.Errorf("rate %q is not positive", s)
	}
	return d, nil
}
