module github.com/txpersister/txpersister/tools/ratesd

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/shopspring/decimal v1.4.0
	github.com/txpersister/txpersister/libs/service v0.3.0
	github.com/txpersister/txpersister/libs/txmodel v0.4.0
)
