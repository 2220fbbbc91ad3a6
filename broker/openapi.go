package broker

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes the admin API. It is kept by hand next to the
// handlers; TestOpenAPIMatchesRoutes fails when a route and the document
// disagree.
//
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDocument)
}
