package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/ssobroker/ssobroker/tenants"
)

// maxAdminBody bounds every admin API request body.
const maxAdminBody = 1 << 20

// decodeJSON reads exactly one JSON object into v. It rejects a wrong
// content type, bodies over 1 MiB, unknown fields (a typo must not be
// silently ignored: "redirect_uri" instead of "redirect_uris" would create a
// client that cannot log in), and trailing data.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		return &apiError{Status: http.StatusUnsupportedMediaType, Type: "unsupported_media_type", Detail: "the request body must be application/json"}
	}
	body := http.MaxBytesReader(w, r.Body, maxAdminBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed_json", "the body must hold exactly one JSON object")
	}
	return nil
}

func jsonError(err error) *apiError {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "body_too_large", Detail: fmt.Sprintf("the request body is larger than %d bytes", maxAdminBody)}
	case errors.As(err, &syntaxErr):
		return badRequest("malformed_json", fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset))
	case errors.As(err, &typeErr):
		return unprocessable(typeErr.Field, fmt.Sprintf("%s must be %s", typeErr.Field, typeErr.Type))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed_json", "the body is empty or truncated")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apiError{Status: http.StatusBadRequest, Type: "unknown_field", Field: field, Detail: fmt.Sprintf("unknown field %q", field)}
	}
	return badRequest("malformed_json", "the body is not valid JSON for this request")
}

// maxCursor bounds the opaque pagination cursor (an id).
const maxCursor = 128

// pageFromQuery reads ?limit=&after=.
func pageFromQuery(r *http.Request) (tenants.Page, error) {
	q := r.URL.Query()
	p := tenants.Page{After: q.Get("after")}
	if len(p.After) > maxCursor {
		return p, unprocessable("after", "after is not a valid cursor")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > tenants.MaxPageLimit {
			return p, unprocessable("limit", fmt.Sprintf("limit must be an integer from 1 to %d", tenants.MaxPageLimit))
		}
		p.Limit = n
	}
	return p.Normalized(), nil
}

// list is the envelope of every paginated response.
type list[T any] struct {
	Data      []T    `json:"data"`
	NextAfter string `json:"next_after,omitempty"`
}

func newList[T, U any](items []T, next string, conv func(T) U) list[U] {
	out := list[U]{Data: make([]U, 0, len(items)), NextAfter: next}
	for _, it := range items {
		out.Data = append(out.Data, conv(it))
	}
	return out
}

// validID bounds path ids before they reach the store.
func validID(id, prefix string) bool {
	if !strings.HasPrefix(id, prefix) || len(id) > 64 {
		return false
	}
	for _, c := range id[len(prefix):] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
