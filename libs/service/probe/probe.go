// Package probe is the health check a process runs against its own server:
// what a service's, or ratesd's, "healthcheck" argument does, so that a
// container image with no shell or curl can still be health-checked. It
// needs nothing but the standard library.
package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Timeout bounds one Get, connection and answer included.
const Timeout = 2 * time.Second

// bodyLimit is how much of an unhealthy answer's body Get quotes.
const bodyLimit = 512

// Get GETs url and returns nil when the answer is 2xx. Anything else is an
// error naming the URL and, when there was an answer, its status and the
// start of its body (the reason /readyz gives). It gives up after Timeout,
// or sooner when ctx ends:
//
//	err := probe.Get(ctx, probe.LocalURL(cfg.AdminAddr, "/readyz"))
//
// Proxy settings from the environment are ignored: the target is the
// process itself.
func Get(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		// client.Do's error already quotes the method and URL.
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	if reason := strings.TrimSpace(string(body)); reason != "" {
		return fmt.Errorf("probe %s: %s: %s", url, resp.Status, reason)
	}
	return fmt.Errorf("probe %s: %s", url, resp.Status)
}

// LocalURL returns the http URL at which a process reaches its own server
// listening on addr, followed by path: an unspecified host (":8081",
// "0.0.0.0:8081", "[::]:8081") becomes the loopback address 127.0.0.1, any
// other host is kept ("localhost:8081", "[::1]:8081"). An addr that is not
// host:port is used as it is.
func LocalURL(addr, path string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + path
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}
