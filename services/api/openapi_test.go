package main

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/services/api/internal/httpapi"
)

// loadSpec parses the embedded openapi.yaml.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPIIsValid checks that openapi.yaml is a valid OpenAPI 3.1
// document whose examples match their schemas.
func TestOpenAPIIsValid(t *testing.T) {
	doc := loadSpec(t)
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	ctx := openapi3.WithValidationOptions(context.Background(),
		openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation(), openapi3.EnableSchemaPatternValidation())
	if err := doc.Validate(ctx); err != nil {
		t.Errorf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
}

// TestOpenAPICoversEveryRoute holds the router's routes against the
// document's operations, both ways: a route without a contract, or a
// contract without a route, fails.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadSpec(t)
	var inSpec []httpapi.Route
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec = append(inSpec, httpapi.Route{Method: method, Path: path})
		}
	}
	sort.Slice(inSpec, func(i, j int) bool {
		if inSpec[i].Path != inSpec[j].Path {
			return inSpec[i].Path < inSpec[j].Path
		}
		return inSpec[i].Method < inSpec[j].Method
	})
	h := httpapi.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"), time.Now, time.Second)
	if diff := cmp.Diff(inSpec, h.Routes()); diff != "" {
		t.Errorf("routes in openapi.yaml (-) and in the router (+) differ:\n%s", diff)
	}
}
