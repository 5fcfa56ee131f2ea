package httpapi

import (
	"net/http"
	"sort"

	"github.com/gorilla/mux"
)

// routeOpenAPI names the route of GET /openapi.yaml, which access lets in
// without an API key: a client needs the contract before it has a key.
const routeOpenAPI = "openapi"

// WithOpenAPI serves spec, the API's OpenAPI document (services/api/
// openapi.yaml), at GET /openapi.yaml. Without it that route answers 404.
func WithOpenAPI(spec []byte) Option {
	return func(h *Handler) { h.spec = spec }
}

func (h *Handler) openAPI(w http.ResponseWriter, _ *http.Request) {
	if h.spec == nil {
		writeProblem(w, problem{Status: http.StatusNotFound, Detail: "this api was built without its OpenAPI document"})
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(h.spec)
}

// isPublic reports whether r matched a route that needs no API key.
func isPublic(r *http.Request) bool {
	rt := mux.CurrentRoute(r)
	return rt != nil && rt.GetName() == routeOpenAPI
}

// Route is one endpoint the handler serves: a method and a path template
// such as "/v1/transactions/{id}".
type Route struct {
	Method string
	Path   string
}

// Routes lists every endpoint the handler serves, sorted by path then
// method, so that a test can hold them against the OpenAPI document.
func (h *Handler) Routes() []Route {
	var out []Route
	_ = h.router.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := rt.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, _ := rt.GetMethods()
		for _, m := range methods {
			out = append(out, Route{Method: m, Path: tpl})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}
