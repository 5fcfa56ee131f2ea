module github.com/txpersister/txpersister/vegeta/ceilings

go 1.26.0

require (
	github.com/rabbitmq/amqp091-go v1.16.0
	github.com/txpersister/txpersister/libs/service v0.3.0
)
