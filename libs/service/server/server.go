// Package server runs an http.Server until its context ends, then shuts
// it down gracefully: the one server loop of the services and of ratesd.
// It needs only the standard library.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ShutdownTimeout bounds how long Run and Serve wait for in-flight
// requests once their context is done.
const ShutdownTimeout = 10 * time.Second

// Run listens on srv.Addr (":http" when empty) and serves until ctx is
// done, then shuts the server down gracefully, waiting at most
// ShutdownTimeout for in-flight requests. It returns nil after a clean
// shutdown, the listen or serve error otherwise (never http.ErrServerClosed).
// log may be nil.
func Run(ctx context.Context, srv *http.Server, log *slog.Logger) error {
	addr := srv.Addr
	if addr == "" {
		addr = ":http"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return Serve(ctx, srv, ln, log)
}

// Serve is Run on a listener the caller opened, e.g. on
// "127.0.0.1:0" in a test that needs to know the port. Serve closes ln.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := ln.Addr().String()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.InfoContext(ctx, "http server listening", "addr", addr)

	select {
	case err := <-served:
		// The server stopped on its own (or someone else shut it down).
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}

	log.InfoContext(ctx, "http server shutting down", "addr", addr)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests still running after the grace period: cut them off.
		closeErr := srv.Close()
		if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
			closeErr = errors.Join(closeErr, serveErr)
		}
		return fmt.Errorf("shut down http server on %s: %w", addr, errors.Join(err, closeErr))
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", addr, err)
	}
	log.InfoContext(ctx, "http server stopped", "addr", addr)
	return nil
}
