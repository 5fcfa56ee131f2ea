module github.com/txpersister/txpersister/libs/txclient

go 1.25.0

require (
	github.com/cenkalti/backoff/v5 v5.0.3
	github.com/google/go-cmp v0.7.0
	github.com/shopspring/decimal v1.4.0
	github.com/standard-webhooks/standard-webhooks/libraries v1.3.0
	github.com/txpersister/txpersister/libs/txmodel v0.4.0
)
