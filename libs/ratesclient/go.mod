module github.com/txpersister/txpersister/libs/ratesclient

go 1.25.0

require (
	github.com/go-resty/resty/v2 v2.17.2
	github.com/google/go-cmp v0.7.0
	github.com/shopspring/decimal v1.4.0
	github.com/txpersister/txpersister/libs/txmodel v0.2.0
	golang.org/x/sync v0.20.0
)

require golang.org/x/net v0.43.0 // indirect
