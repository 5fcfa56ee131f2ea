package amqptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// ctlAdmin administers the broker with rabbitmqctl, which must be allowed
// to talk to the node (run as root or as the rabbitmq user).
type ctlAdmin struct{}

var _ admin = ctlAdmin{}

// addVhost makes the vhost and grants user all permissions on it. One
// `rabbitmqctl eval` costs one CLI start instead of two (each ~0.4s of CPU);
// if the broker's internals differ from 3.x's, it falls back to the two
// documented commands.
func (ctlAdmin) addVhost(ctx context.Context, vhost, user string) error {
	bin := func(s string) string { return "<<\"" + s + "\">>" }
	expr := "ok = rabbit_vhost:add(" + bin(vhost) + ", " + bin("amqptest") + "), " +
		"ok = rabbit_auth_backend_internal:set_permissions(" + bin(user) + ", " + bin(vhost) + ", " +
		bin(".*") + ", " + bin(".*") + ", " + bin(".*") + ", " + bin("amqptest") + ")."
	out, err := rabbitmqctl(ctx, "eval", expr)
	if err == nil && strings.TrimSpace(string(out)) == "ok" {
		return nil
	}
	if out, err := rabbitmqctl(ctx, "add_vhost", vhost); err != nil && !bytes.Contains(out, []byte("already exists")) {
		return fmt.Errorf("rabbitmqctl add_vhost %q: %w\n%s", vhost, err, out)
	}
	if out, err := rabbitmqctl(ctx, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"); err != nil {
		return fmt.Errorf("rabbitmqctl set_permissions -p %q %q: %w\n%s", vhost, user, err, out)
	}
	return nil
}

func (ctlAdmin) deleteVhost(ctx context.Context, vhost string) error {
	if out, err := rabbitmqctl(ctx, "delete_vhost", vhost); err != nil {
		return fmt.Errorf("rabbitmqctl delete_vhost %q: %w\n%s", vhost, err, out)
	}
	return nil
}

func (ctlAdmin) closeConnections(ctx context.Context, vhost string) error {
	if out, err := rabbitmqctl(ctx, "close_all_connections", "-p", vhost, "amqptest: forced close"); err != nil {
		return fmt.Errorf("rabbitmqctl close_all_connections -p %q: %w\n%s", vhost, err, out)
	}
	return nil
}

func (ctlAdmin) queues(ctx context.Context, vhost string) (map[string]Queue, error) {
	out, err := rabbitmqctl(ctx, "list_queues", "-p", vhost, "name", "type", "arguments", "--formatter", "json")
	if err != nil {
		return nil, fmt.Errorf("rabbitmqctl list_queues -p %q: %w\n%s", vhost, err, out)
	}
	var rows []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		// Each argument is [name, AMQP type, value].
		Arguments [][]any `json:"arguments"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("parse rabbitmqctl list_queues output %q: %w", out, err)
	}
	qs := make(map[string]Queue, len(rows))
	for _, r := range rows {
		args := make(map[string]any, len(r.Arguments))
		for _, a := range r.Arguments {
			if len(a) != 3 {
				return nil, fmt.Errorf("rabbitmqctl list_queues: queue %q: unexpected argument %v", r.Name, a)
			}
			args[fmt.Sprint(a[0])] = a[2]
		}
		qs[r.Name] = Queue{Type: r.Type, Args: args}
	}
	return qs, nil
}

func (ctlAdmin) vhosts(ctx context.Context) ([]string, error) {
	out, err := rabbitmqctl(ctx, "list_vhosts", "name", "--formatter", "json")
	if err != nil {
		return nil, fmt.Errorf("rabbitmqctl list_vhosts: %w\n%s", err, out)
	}
	var rows []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("parse rabbitmqctl list_vhosts output %q: %w", out, err)
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	return names, nil
}

// rabbitmqctl runs `rabbitmqctl -q args...` and returns its standard
// output, or on failure its standard output and error together.
func rabbitmqctl(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-q"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}
