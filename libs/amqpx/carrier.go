package amqpx

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
)

var _ propagation.TextMapCarrier = HeaderCarrier{}

// HeaderCarrier adapts AMQP message headers to OpenTelemetry's
// propagation.TextMapCarrier, so that W3C trace context travels with a
// message:
//
//	if msg.Headers == nil {
//		msg.Headers = amqp.Table{}
//	}
//	propagator.Inject(ctx, amqpx.HeaderCarrier(msg.Headers))
//	...
//	ctx = propagator.Extract(ctx, amqpx.HeaderCarrier(d.Headers))
//
// Values are stored as strings. Set on a nil HeaderCarrier panics, as on a
// nil map.
type HeaderCarrier amqp.Table

// Get returns the value of key as a string: strings as they are, byte
// slices (AMQP long strings decoded as bytes) converted, other types
// formatted; "" when absent.
func (h HeaderCarrier) Get(key string) string {
	switch v := h[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// Set stores value under key.
func (h HeaderCarrier) Set(key, value string) { h[key] = value }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
