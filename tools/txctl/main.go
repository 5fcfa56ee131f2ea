// Command txctl is the operator's tool for txpersister's pipeline: it shows
// the outbox backlog, the transactions by status and the queue depths;
// lists the dead-letter queue and moves its messages back to work; and
// queues failed transactions for conversion again. Every command is safe to
// run twice.
//
// Usage:
//
//	txctl status [-json] [-retry-delays 5s,30s,...]
//	txctl dlq list [-limit N] [-json]
//	txctl dlq requeue (-id ID ... | -all) [-v] [-json]
//	txctl reprocess (-id ID ... | -status failed [-reason-like P] [-since T] [-until T]) [-dry-run] [-v] [-json]
//
// It reads DATABASE_URL, AMQP_URL and RETRY_DELAYS as the services do; see
// the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, now: time.Now})
	stop()
	switch {
	case err == nil, errors.Is(err, errHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "txctl: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "txctl: %v\n", err)
		os.Exit(1)
	}
}

// env is what a command gets from the outside world.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
}

// errUsage marks a command line txctl does not understand.
var errUsage = errors.New("usage")

// errHelp says a command printed its help on request: nothing else to do.
var errHelp = errors.New("help requested")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

const usage = `txctl: the operator's tool for txpersister

  txctl status [-json] [-retry-delays 5s,30s,...]
      the outbox backlog, transactions by status, the queue depths
  txctl dlq list [-limit N] [-json]
      the messages in the dead-letter queue, left in it
  txctl dlq requeue (-id ID ... | -all) [-v] [-json]
      move dead-lettered messages back to the work queue
  txctl reprocess (-id ID ... | -status failed [-reason-like P] [-since T] [-until T]) [-dry-run] [-v] [-json]
      queue failed transactions for conversion again

Environment: DATABASE_URL, AMQP_URL, RETRY_DELAYS (as the services read them).
"txctl <command> -h" shows a command's flags.
`

func run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return usageError("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "status":
		return runStatus(ctx, rest, e)
	case "dlq":
		if len(rest) == 0 {
			return usageError("dlq needs a subcommand: list or requeue")
		}
		switch sub := rest[0]; sub {
		case "list":
			return runDLQList(ctx, rest[1:], e)
		case "requeue":
			return runDLQRequeue(ctx, rest[1:], e)
		default:
			return usageError("unknown dlq subcommand %q (want list or requeue)", sub)
		}
	case "reprocess":
		return runReprocess(ctx, rest, e)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usage)
		return nil
	default:
		fmt.Fprint(e.stderr, usage)
		return usageError("unknown command %q", cmd)
	}
}
