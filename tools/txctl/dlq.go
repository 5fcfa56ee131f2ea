package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/tools/txctl/internal/queues"
)

func runDLQList(ctx context.Context, args []string, e env) error {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	fs := newFlags("dlq list", e)
	limit := fs.Int("limit", 100, "list at most this many messages; 0 lists all")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 0 {
		return usageError("dlq list: -limit %d is negative", *limit)
	}
	ctx, cancel := context.WithTimeout(ctx, lookTimeout)
	defer cancel()
	conn, err := dialBroker(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // a lookup: its close loses nothing
	dlq := amqpx.DefaultTopology().DLQ
	msgs, err := queues.List(ctx, conn, dlq, *limit)
	if err != nil {
		return err
	}
	if err := printList(e, msgs, *asJSON); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "%d messages listed; all are still in %s (their order there may have changed)\n", len(msgs), dlq)
	return nil
}

func printList(e env, msgs []queues.Message, asJSON bool) error {
	if asJSON {
		if msgs == nil {
			msgs = []queues.Message{}
		}
		return writeJSON(e.stdout, msgs)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "MESSAGE ID\tTRANSACTION ID\tATTEMPT\tERROR\tLAST ERROR\n")
	for _, m := range msgs {
		reason := m.Error
		if reason == "" && m.DeathReason != "" {
			reason = "(broker: " + m.DeathReason + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", orDash(m.MessageID), orDash(m.TransactionID), m.Attempt, orDash(oneLine(reason)), orDash(oneLine(m.LastError)))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write list: %w", err)
	}
	return nil
}

// requeueReport is what `txctl dlq requeue` prints.
type requeueReport struct {
	Moved []queues.Message `json:"moved"`
	// Left counts the messages not selected, still in the DLQ.
	Left int `json:"left"`
	// NotFound are the ids asked for that no message in the DLQ carries:
	// moved before, or never there.
	NotFound []string `json:"not_found,omitempty"`
}

func runDLQRequeue(ctx context.Context, args []string, e env) error {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	fs := newFlags("dlq requeue", e)
	var ids idsFlag
	fs.Var(&ids, "id", "move the message with this message or transaction id (repeatable, or comma-separated)")
	all := fs.Bool("all", false, "move every message")
	verbose := fs.Bool("v", false, "name each message moved")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *all && len(ids) > 0:
		return usageError("dlq requeue: -id and -all exclude each other")
	case !*all && len(ids) == 0:
		return usageError("dlq requeue: say which messages: -id ID ... or -all")
	}
	topo := amqpx.DefaultTopology()
	conn, err := dialBroker(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := conn.Close(); err != nil {
			fmt.Fprintf(e.stderr, "txctl: warning: close the RabbitMQ connection: %v\n", err)
		}
	}()
	pub := amqpx.NewPublisher(conn)
	defer func() {
		if err := pub.Close(); err != nil {
			fmt.Fprintf(e.stderr, "txctl: warning: close the publisher: %v\n", err)
		}
	}()

	selected := func(queues.Message) bool { return true }
	if !*all {
		selected = func(m queues.Message) bool {
			return slices.ContainsFunc(ids, m.Matches)
		}
	}
	res, err := queues.Requeue(ctx, conn, pub, topo, selected)
	rep := requeueReport{Moved: res.Moved, Left: res.Left}
	if rep.Moved == nil {
		rep.Moved = []queues.Message{}
	}
	if err == nil {
		for _, id := range ids {
			if !slices.ContainsFunc(res.Moved, func(m queues.Message) bool { return m.Matches(id) }) {
				rep.NotFound = append(rep.NotFound, id)
			}
		}
	}
	var perr error
	if *asJSON {
		perr = writeJSON(e.stdout, rep)
	} else {
		fmt.Fprintf(e.stdout, "moved %d messages from %s to exchange %q, routing key %q; %d left in the DLQ\n",
			len(rep.Moved), topo.DLQ, topo.Exchange, topo.RoutingKey, rep.Left)
		if *verbose {
			for _, m := range rep.Moved {
				fmt.Fprintf(e.stdout, "moved %s (transaction %s)\n", orDash(m.MessageID), orDash(m.TransactionID))
			}
		}
		if len(rep.NotFound) > 0 {
			fmt.Fprintf(e.stdout, "not in the DLQ (moved before, or never there): %s\n", strings.Join(rep.NotFound, ", "))
		}
	}
	if err != nil {
		return err
	}
	return perr
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a reason on its row of the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
