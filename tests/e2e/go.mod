module github.com/txpersister/txpersister/tests/e2e

go 1.26.0

require (
	github.com/rabbitmq/amqp091-go v1.16.0
	github.com/txpersister/txpersister/libs/amqpx v0.1.0
	github.com/txpersister/txpersister/libs/testkit v0.1.0
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)
