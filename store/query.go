package store

import (
	"github.com/ssobroker/ssobroker/tenants"
)

// Compile-time checks that the store implements its consumers' interfaces.
var _ tenants.Store = (*Store)(nil)

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// cut finishes a cursor page fetched with limit+1 rows: the extra row only
// says that there is more. next is the id of the last item returned, or ""
// at the end of the list.
func cut[T any](items []T, limit int, id func(T) string) (page []T, next string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, id(items[limit-1])
}

// nonEmpty returns nil for an empty slice, so that a list written as nil
// (stored as []) reads back as nil.
func nonEmpty[T any](l []T) []T {
	if len(l) == 0 {
		return nil
	}
	return l
}
