// Package amqpx is the pipeline's RabbitMQ layer, built on
// github.com/rabbitmq/amqp091-go.
//
// It provides a self-healing connection (Conn), the pipeline's topology
// (Topology: a direct exchange, a quorum work queue with a delivery limit, a
// dead-letter queue and a ladder of delay queues for retries), a publisher
// that reports success only for broker-confirmed messages (Publisher), a
// consumer that resumes after reconnects (Consumer), retry and dead-letter
// helpers (Retrier) and a trace-context carrier for message headers
// (HeaderCarrier).
//
// Delivery guarantees are at least once: a publish that returns an error may
// still have reached the broker, and a delivery may be handed to a Handler
// more than once. Consumers must be idempotent.
package amqpx

import "errors"

// ErrClosed is returned by methods of a Conn, Publisher or Consumer that was
// closed (or whose Conn was closed).
var ErrClosed = errors.New("amqpx: closed")

// ErrNotConfirmed is wrapped by the error Publish returns when at least one
// message was not confirmed by the broker: it was nacked, returned as
// unroutable, its channel or connection closed before the confirm arrived,
// or the context expired first. Some of the messages may have been stored by
// the broker anyway; publishing again is the caller's way to be sure.
var ErrNotConfirmed = errors.New("amqpx: publish not confirmed")

// ErrRetriesExhausted is returned by Retrier.Retry when the delivery has
// already been retried once per configured delay. The delivery is left
// unsettled so that the caller can record the failure and dead-letter it.
var ErrRetriesExhausted = errors.New("amqpx: retries exhausted")
