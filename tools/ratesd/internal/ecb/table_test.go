package ecb

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

func histTable(t *testing.T) *Table {
	t.Helper()
	table, err := ParseCSV(bytes.NewReader(readFixture(t, "hist.csv")))
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func TestTableOn(t *testing.T) {
	table := histTable(t)
	tests := []struct {
		name    string
		date    time.Time
		want    string
		wantErr error
	}{
		{name: "business day", date: time.Date(2024, 9, 12, 0, 0, 0, 0, time.UTC), want: "2024-09-12"},
		{name: "time of day ignored", date: time.Date(2024, 9, 12, 23, 59, 0, 0, time.UTC), want: "2024-09-12"},
		{name: "gap takes previous day", date: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), want: "2024-09-10"},
		{name: "weekend takes friday", date: time.Date(2024, 9, 15, 0, 0, 0, 0, time.UTC), want: "2024-09-13"},
		{name: "after latest takes latest", date: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), want: "2024-09-13"},
		{name: "first day", date: time.Date(1999, 1, 4, 0, 0, 0, 0, time.UTC), want: "1999-01-04"},
		{name: "before first day", date: time.Date(1999, 1, 3, 0, 0, 0, 0, time.UTC), wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			day, err := table.On(tt.date)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("On err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("On: %v", err)
			}
			if got := day.Date.Format(time.DateOnly); got != tt.want {
				t.Errorf("On = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDayConvert(t *testing.T) {
	table := histTable(t)
	day, err := table.On(time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		base    string
		symbols []string
		amount  string
		want    map[string]string
		wantErr error
	}{
		{
			name: "EUR base is the published rate", base: "EUR", amount: "1",
			want: map[string]string{"USD": "1.1031", "JPY": "157.81", "GBP": "0.84265"},
		},
		{
			// 1/1.1031 = 0.906536125464...
			name: "to EUR", base: "USD", symbols: []string{"EUR"}, amount: "1",
			want: map[string]string{"EUR": "0.9065361255"},
		},
		{
			// 157.81/0.84265 = 187.278229395...
			name: "cross rate", base: "GBP", symbols: []string{"JPY", "USD"}, amount: "1",
			want: map[string]string{"JPY": "187.2782294", "USD": "1.309084436"},
		},
		{
			name: "amount multiplies before rounding", base: "USD", symbols: []string{"EUR"}, amount: "100",
			want: map[string]string{"EUR": "90.65361255"},
		},
		{
			name: "all but base", base: "USD", amount: "1",
			want: map[string]string{"EUR": "0.9065361255", "JPY": "143.060466", "GBP": "0.7638926661"},
		},
		{name: "unknown symbol", base: "USD", symbols: []string{"XXX"}, amount: "1", wantErr: ErrNotFound},
		{name: "not quoted that day", base: "CYP", amount: "1", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := day.Convert(tt.base, tt.symbols, decimal.RequireFromString(tt.amount))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Convert err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			text := make(map[string]string, len(got))
			for k, v := range got {
				text[k] = v.String()
			}
			if diff := cmp.Diff(tt.want, text); diff != "" {
				t.Errorf("Convert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDivRoundSignificant(t *testing.T) {
	tests := []struct {
		num, den, want string
	}{
		{"1", "3", "0.3333333333"},
		{"2", "3", "0.6666666667"},
		{"3", "2", "1.5"},
		{"1.0000000005", "1", "1"},           // tie, even stays
		{"1.0000000015", "1", "1.000000002"}, // tie, odd goes up
		{"1.00000000050001", "1", "1.000000001"},
		{"3.0000000015", "3", "1"}, // tie reached by division
		{"12345678905", "1", "12345678900"},
		{"12345678915", "1", "12345678920"},
		{"0.99999999999", "1", "1"},
		{"0.000012345678905", "1", "0.00001234567890"},
		{"16929.55", "0.8391", "20175.84317"},
	}
	for _, tt := range tests {
		t.Run(tt.num+"/"+tt.den, func(t *testing.T) {
			got := divRoundSignificant(decimal.RequireFromString(tt.num), decimal.RequireFromString(tt.den), 10)
			if want := decimal.RequireFromString(tt.want); !got.Equal(want) {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestNewTableRejects(t *testing.T) {
	d := time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)
	one := map[string]decimal.Decimal{"USD": decimal.RequireFromString("1.1")}
	if _, err := NewTable(nil); err == nil {
		t.Error("NewTable(nil) succeeded")
	}
	if _, err := NewTable([]Day{NewDay(d, one), NewDay(d, one)}); err == nil {
		t.Error("NewTable with a duplicate date succeeded")
	}
	if _, err := NewTable([]Day{NewDay(d, map[string]decimal.Decimal{"USD": decimal.Zero})}); err == nil {
		t.Error("NewTable with a zero rate succeeded")
	}
}
