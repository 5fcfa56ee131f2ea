package txmodel_test

import (
	"errors"
	"testing"

	"github.com/txpersister/txpersister/libs/txmodel"
)

func dec(t *testing.T, s string) txmodel.Decimal {
	t.Helper()
	d, err := txmodel.ParseDecimal(s)
	if err != nil {
		t.Fatalf("ParseDecimal(%q): %v", s, err)
	}
	return d
}

func TestConvertRoundsHalfEven(t *testing.T) {
	tests := []struct {
		amount, currency, rate, target, want string
	}{
		// The original's defect 1: amount × rate is right, not amount / rate.
		{"100.00", "USD", "0.9", "EUR", "90.00"},
		{"100.00", "USD", "0.90498", "EUR", "90.50"},   // 90.498 → 90.50
		{"1.00", "USD", "0.125", "EUR", "0.12"},        // tie → even 2
		{"1.00", "USD", "0.135", "EUR", "0.14"},        // tie → even 4
		{"1.00", "USD", "0.1250000001", "EUR", "0.13"}, // just past the tie
		{"-1.00", "USD", "0.125", "EUR", "-0.12"},      // symmetric
		{"12345", "JPY", "0.0061", "EUR", "75.30"},     // 75.3045
		{"100.00", "EUR", "162.5", "JPY", "16250"},     // to a 0-digit currency
		{"1.00", "EUR", "0.3765", "BHD", "0.376"},      // tie at the third digit → even 6
		{"1.00", "EUR", "0.3775", "BHD", "0.378"},      // tie → even 8
		{"0.5", "EUR", "1", "JPY", "0"},                // 0.5 → 0
		{"2.5", "EUR", "1", "JPY", "2"},
		{"3.5", "EUR", "1", "JPY", "4"},
		{"123456789012345.67", "USD", "0.9", "EUR", "111111110111111.10"}, // exact far beyond float64
	}
	for _, tt := range tests {
		t.Run(tt.amount+tt.currency+"x"+tt.rate, func(t *testing.T) {
			m := txmodel.Money{Amount: dec(t, tt.amount), Currency: txmodel.MustCurrency(tt.currency)}
			got := txmodel.Convert(m, dec(t, tt.rate), txmodel.MustCurrency(tt.target))
			if got.String() != tt.want {
				t.Errorf("Convert = %s, want %s", got, tt.want)
			}
			if got.Currency.Code() != tt.target {
				t.Errorf("currency = %s, want %s", got.Currency, tt.target)
			}
		})
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct{ amount, currency, want string }{
		{"100", "USD", "100.00"},
		{"100.5", "USD", "100.50"},
		{"12345", "JPY", "12345"},
		{"1.234", "BHD", "1.234"},
		{"1.2", "BHD", "1.200"},
		{"1.5", "CLF", "1.5000"},
	}
	for _, tt := range tests {
		m, err := txmodel.NewMoney(dec(t, tt.amount), txmodel.MustCurrency(tt.currency))
		if err != nil {
			t.Fatalf("NewMoney(%s %s): %v", tt.amount, tt.currency, err)
		}
		if got := m.String(); got != tt.want {
			t.Errorf("%s %s: String() = %s, want %s", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestNewMoneyRejects(t *testing.T) {
	tests := []struct{ amount, currency string }{
		{"0", "USD"}, {"-1", "USD"}, {"1.001", "USD"}, {"1.5", "JPY"}, {"1.0001", "BHD"}, {"1000000000000000", "USD"},
	}
	for _, tt := range tests {
		if _, err := txmodel.NewMoney(dec(t, tt.amount), txmodel.MustCurrency(tt.currency)); !errors.Is(err, txmodel.ErrInvalidAmount) {
			t.Errorf("NewMoney(%s %s) err = %v, want ErrInvalidAmount", tt.amount, tt.currency, err)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	good := map[string]string{"1": "1", "0.1": "0.1", "-2.50": "-2.5", "1e2": "100", "1.5E-3": "0.0015", "0.90498123456789012345": "0.90498123456789012345"}
	for in, want := range good {
		d, err := txmodel.ParseDecimal(in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", in, err)
			continue
		}
		if d.String() != want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", in, d, want)
		}
	}
	for _, in := range []string{"", "+1", ".5", "1.", "1e", "0x10", "NaN", "Infinity", "1e41", "1e-41", " 1", "1 ", "1,5", "١"} {
		if _, err := txmodel.ParseDecimal(in); !errors.Is(err, txmodel.ErrInvalidAmount) {
			t.Errorf("ParseDecimal(%q) err = %v, want ErrInvalidAmount", in, err)
		}
	}
}

func TestLookupCurrency(t *testing.T) {
	for code, minor := range map[string]int{"USD": 2, "usd": 2, "JPY": 0, "BHD": 3, "KWD": 3, "CLF": 4, "EUR": 2} {
		c, err := txmodel.LookupCurrency(code)
		if err != nil {
			t.Errorf("LookupCurrency(%q): %v", code, err)
			continue
		}
		if c.MinorUnit() != minor {
			t.Errorf("%s minor unit = %d, want %d", code, c.MinorUnit(), minor)
		}
	}
	for _, code := range []string{"XAU", "XAG", "XDR", "XXX", "XTS", "ABC", "", "US", "USDD", "HRK"} {
		if _, err := txmodel.LookupCurrency(code); !errors.Is(err, txmodel.ErrUnknownCurrency) {
			t.Errorf("LookupCurrency(%q) err = %v, want ErrUnknownCurrency", code, err)
		}
	}
}

func BenchmarkConvert(b *testing.B) {
	m := txmodel.Money{Amount: txmodel.RoundHalfEven.Round(mustDec("12345.67"), 2), Currency: txmodel.MustCurrency("USD")}
	rate := mustDec("0.904981")
	eur := txmodel.MustCurrency("EUR")
	b.ReportAllocs()
	for b.Loop() {
		_ = txmodel.Convert(m, rate, eur)
	}
}

// BenchmarkConvertQuoted is BenchmarkConvert's conversion as the converter
// makes it since txmodel 0.2.0: from the ECB's quote, 12345.67 ÷ 1.1043,
// with the exact remainder deciding the rounding, and the effective rate
// it shows beside it.
func BenchmarkConvertQuoted(b *testing.B) {
	m := txmodel.Money{Amount: txmodel.RoundHalfEven.Round(mustDec("12345.67"), 2), Currency: txmodel.MustCurrency("USD")}
	quote, one := mustDec("1.1043"), mustDec("1")
	eur := txmodel.MustCurrency("EUR")
	b.ReportAllocs()
	for b.Loop() {
		_ = txmodel.ConvertQuoted(m, quote, one, eur)
		_ = txmodel.CrossRate(quote, one)
	}
}

func mustDec(s string) txmodel.Decimal {
	d, err := txmodel.ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestIsCurrencyCode(t *testing.T) {
	for s, want := range map[string]bool{
		"USD": true, "CYP": true, "ZZZ": true,
		"usd": false, "US": false, "USDX": false, "U$D": false, "": false, "ÜSD": false,
	} {
		if got := txmodel.IsCurrencyCode(s); got != want {
			t.Errorf("IsCurrencyCode(%q) = %v, want %v", s, got, want)
		}
	}
}
