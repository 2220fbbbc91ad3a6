package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/ssobroker/ssobroker/tenants"
)

// apiError is an admin API failure: Status and Detail are for the operator
// (safe, specific), Err is the cause for the log.
type apiError struct {
	Status int
	// Type is a short machine-readable slug appended to the problem type URI.
	Type   string
	Detail string
	// Field names the offending input for 422s.
	Field string
	Err   error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Type, e.Detail, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Detail)
}

func (e *apiError) Unwrap() error { return e.Err }

func badRequest(typ, detail string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typ, Detail: detail}
}

func notFoundError(detail string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "not_found", Detail: detail}
}

func unprocessable(field, detail string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Type: "invalid_field", Field: field, Detail: detail}
}

// problem is an RFC 9457 problem details document.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

const problemTypeBase = "https://ssobroker.dev/problems/"

// toAPIError classifies any error from the directory or store. Unknown
// errors become a 500 whose detail says nothing about the cause: the log
// has it, keyed by request id.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ve *tenants.ValidationError
	var dt *tenants.DomainTakenError
	switch {
	case errors.As(err, &dt):
		return &apiError{Status: http.StatusConflict, Type: "domain_taken", Detail: fmt.Sprintf("domain %s is already claimed by a tenant", dt.Domain), Err: err}
	case errors.As(err, &ve):
		return &apiError{Status: http.StatusUnprocessableEntity, Type: "invalid_field", Field: ve.Field, Detail: ve.Error(), Err: err}
	case errors.Is(err, tenants.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Type: "not_found", Detail: "the resource does not exist", Err: err}
	case errors.Is(err, tenants.ErrAlreadyExists), errors.Is(err, tenants.ErrConflict):
		return &apiError{Status: http.StatusConflict, Type: "conflict", Detail: "the request conflicts with the current state", Err: err}
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "internal", Detail: "internal error; the server log has the cause under this request id", Err: err}
}

func writeProblem(w http.ResponseWriter, r *http.Request, ae *apiError) {
	p := problem{
		Type:      problemTypeBase + ae.Type,
		Title:     http.StatusText(ae.Status),
		Status:    ae.Status,
		Detail:    ae.Detail,
		Field:     ae.Field,
		RequestID: requestID(r.Context()),
	}
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(ae.Status)
	_, _ = w.Write(append(body, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Our own response types always encode; this is a bug, not input.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// notFoundAs names a missing resource in the problem's detail; other
// errors pass through.
func notFoundAs(err error, kind, id string) error {
	if errors.Is(err, tenants.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Type: "not_found", Detail: fmt.Sprintf("%s %s does not exist", kind, id), Err: err}
	}
	return err
}

// idParam reads a path id of the given prefix; a malformed id is simply
// a resource that does not exist (and never reaches the store).
func idParam(r *http.Request, name, prefix, kind string) (string, error) {
	id := chi.URLParam(r, name)
	if !validID(id, prefix) {
		return "", notFoundError(fmt.Sprintf("%s %q does not exist", kind, truncate(id, 64)))
	}
	return id, nil
}
