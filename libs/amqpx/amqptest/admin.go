package amqptest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"

	amqp "github.com/rabbitmq/amqp091-go"
)

// EnvAdmin names the environment variable choosing how the helpers
// administer the broker: "rabbitmqctl", "http" (the management plugin's
// HTTP API), or empty for rabbitmqctl when it is on PATH and HTTP
// otherwise, e.g. when RabbitMQ runs in a container.
const EnvAdmin = "TEST_AMQP_ADMIN"

// EnvManagementURL names the environment variable holding the management
// HTTP API's base URL. When it is unset the API is looked for on port
// 15672 of the broker's host: http://127.0.0.1:15672 for DefaultURL.
const EnvManagementURL = "TEST_AMQP_MANAGEMENT_URL"

// defaultManagementPort is where the management plugin listens unless
// configured otherwise, and where docker-compose.yml publishes it.
const defaultManagementPort = "15672"

// admin is what the helpers need from the broker's administration; one
// implementation runs rabbitmqctl, the other calls the management HTTP API.
// Every method returns an error saying what failed and how to fix it.
type admin interface {
	// addVhost creates vhost and gives user every permission on it.
	addVhost(ctx context.Context, vhost, user string) error
	// deleteVhost deletes vhost, closing its connections.
	deleteVhost(ctx context.Context, vhost string) error
	// closeConnections closes the client connections to vhost.
	closeConnections(ctx context.Context, vhost string) error
	// queues lists the queues of vhost by name.
	queues(ctx context.Context, vhost string) (map[string]Queue, error)
	// vhosts lists the names of the broker's virtual hosts.
	vhosts(ctx context.Context) ([]string, error)
}

// newAdmin chooses how to administer the broker of amqpURL, following
// EnvAdmin.
func newAdmin(amqpURL string) (admin, error) {
	mode := os.Getenv(EnvAdmin)
	switch mode {
	case "":
		if _, err := exec.LookPath("rabbitmqctl"); err == nil {
			return ctlAdmin{}, nil
		}
		return httpAdminOrNil(amqpURL)
	case "rabbitmqctl":
		if _, err := exec.LookPath("rabbitmqctl"); err != nil {
			return nil, fmt.Errorf("%s=rabbitmqctl, but rabbitmqctl is not on PATH (%w): install RabbitMQ's CLI tools, e.g. `apt-get install rabbitmq-server`, or unset %s to use the management HTTP API", EnvAdmin, err, EnvAdmin)
		}
		return ctlAdmin{}, nil
	case "http":
		return httpAdminOrNil(amqpURL)
	default:
		return nil, fmt.Errorf("%s=%q: want rabbitmqctl, http or empty", EnvAdmin, mode)
	}
}

// httpAdminOrNil is newHTTPAdmin as an admin that is nil on error, not a
// nil *httpAdmin.
func httpAdminOrNil(amqpURL string) (admin, error) {
	a, err := newHTTPAdmin(amqpURL)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// newHTTPAdmin administers the broker of amqpURL through the management
// API at EnvManagementURL (default: port 15672 of the broker's host), as
// the user of amqpURL.
func newHTTPAdmin(amqpURL string) (*httpAdmin, error) {
	uri, err := amqp.ParseURI(amqpURL)
	if err != nil {
		return nil, fmt.Errorf("parse %s %q: %w", EnvURL, amqpURL, err)
	}
	raw := os.Getenv(EnvManagementURL)
	if raw == "" {
		raw = "http://" + net.JoinHostPort(uri.Host, defaultManagementPort)
	}
	base, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse %s %q: %w", EnvManagementURL, raw, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" {
		return nil, fmt.Errorf("%s %q: want an http:// or https:// URL", EnvManagementURL, raw)
	}
	return &httpAdmin{base: base, user: uri.Username, pass: uri.Password}, nil
}
