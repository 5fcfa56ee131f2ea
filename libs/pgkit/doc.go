// Package pgkit is what both services need of PostgreSQL beyond pgx itself:
// migrations applied under an advisory lock, so replicas can start
// together, and the one classification of errors that mean the database is
// unreachable, so every edge can answer "retry later" instead of "broken".
package pgkit
