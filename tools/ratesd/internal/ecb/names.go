package ecb

// Name returns the English name of a currency the ECB has quoted, or "" for
// a code it does not know.
func Name(code string) string {
	switch code {
	case "AUD":
		return "Australian Dollar"
	case "BGN":
		return "Bulgarian Lev"
	case "BRL":
		return "Brazilian Real"
	case "CAD":
		return "Canadian Dollar"
	case "CHF":
		return "Swiss Franc"
	case "CNY":
		return "Chinese Renminbi Yuan"
	case "CYP":
		return "Cypriot Pound"
	case "CZK":
		return "Czech Koruna"
	case "DKK":
		return "Danish Krone"
	case "EEK":
		return "Estonian Kroon"
	case "EUR":
		return "Euro"
	case "GBP":
		return "British Pound"
	case "HKD":
		return "Hong Kong Dollar"
	case "HRK":
		return "Croatian Kuna"
	case "HUF":
		return "Hungarian Forint"
	case "IDR":
		return "Indonesian Rupiah"
	case "ILS":
		return "Israeli New Shekel"
	case "INR":
		return "Indian Rupee"
	case "ISK":
		return "Icelandic Króna"
	case "JPY":
		return "Japanese Yen"
	case "KRW":
		return "South Korean Won"
	case "LTL":
		return "Lithuanian Litas"
	case "LVL":
		return "Latvian Lats"
	case "MTL":
		return "Maltese Lira"
	case "MXN":
		return "Mexican Peso"
	case "MYR":
		return "Malaysian Ringgit"
	case "NOK":
		return "Norwegian Krone"
	case "NZD":
		return "New Zealand Dollar"
	case "PHP":
		return "Philippine Peso"
	case "PLN":
		return "Polish Złoty"
	case "ROL":
		return "Romanian Leu (old)"
	case "RON":
		return "Romanian Leu"
	case "RUB":
		return "Russian Ruble"
	case "SEK":
		return "Swedish Krona"
	case "SGD":
		return "Singapore Dollar"
	case "SIT":
		return "Slovenian Tolar"
	case "SKK":
		return "Slovak Koruna"
	case "THB":
		return "Thai Baht"
	case "TRL":
		return "Turkish Lira (old)"
	case "TRY":
		return "Turkish Lira"
	case "USD":
		return "United States Dollar"
	case "ZAR":
		return "South African Rand"
	default:
		return ""
	}
}
