module github.com/txpersister/txpersister/libs/txmodel

go 1.26.0

require (
	github.com/go-json-experiment/json v1.27.2
	github.com/google/go-cmp v0.7.0
	github.com/shopspring/decimal v1.4.0
)
