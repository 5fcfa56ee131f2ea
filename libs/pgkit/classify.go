package pgkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable: PostgreSQL could not be reached or did not answer in
// time; the outcome of a write is unknown and retrying it must be safe.
var ErrUnavailable = errors.New("database unavailable")

// ErrRefused: PostgreSQL refused the data of a write (SQLSTATE class 22,
// data exception, such as a date out of range or a NUL in text; class 23,
// integrity constraint violation): the same write will fail again, however
// often it is tried. Nothing of the statement was written.
var ErrRefused = errors.New("database refused the data")

// Classify wraps err in ErrUnavailable when it says PostgreSQL could not be
// reached or stopped answering (connection refused or lost, server shutting
// down or starting, too many connections, a timeout), so the HTTP edge can
// answer 503 with Retry-After instead of 500, and a consumer can wait and
// retry; and in ErrRefused when PostgreSQL refused the data itself, so a
// consumer gives up on that data instead of retrying it forever. Other
// errors, and nil, pass unchanged.
func Classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRefused) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if refused(err) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

func refused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
}

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch {
		case pgErr.Code[:2] == "08", // connection exception
			pgErr.Code[:2] == "53",                                              // insufficient resources, too many connections
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, crash, starting up
			pgErr.Code == "40001", pgErr.Code == "40P01", // serialization failure, deadlock: retry
			pgErr.Code == "57014": // statement timeout
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) ||
		pgconn.Timeout(err)
}
