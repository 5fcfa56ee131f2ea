// Package e2e tests the whole pipeline as its users meet it: ratesd, the
// api and the converter built and started as processes against the real
// PostgreSQL and RabbitMQ (a database and a vhost of the test's own), and
// driven over HTTP.
package e2e
