package txmodel

import "github.com/shopspring/decimal"

// Decimal is the exact decimal type of the pipeline, re-exported so that
// users of txmodel name one type.
type Decimal = decimal.Decimal
