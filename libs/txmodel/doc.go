// Package txmodel is the one vocabulary of txpersister: transactions, money,
// ISO 4217 currencies, the validation rules of an incoming transaction with
// their error codes, and the versioned queue message that carries a
// transaction from the api to the converter.
//
// It imports nothing outside the standard library and the decimal library:
// every service and library agrees on these types, so they change only with
// care. Money is never a float here: amounts are exact decimals, formatted
// with the currency's minor unit, and rounded with a named mode (half to
// even, see Convert).
package txmodel
