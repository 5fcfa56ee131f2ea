module github.com/txpersister/txpersister/libs/txmodel

go 1.25.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/shopspring/decimal v1.4.0
)
