package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/tenants"
)

var _ audit.Log = (*Store)(nil)

const auditColumns = `id, time, type, tenant_id, connection_id, client_id, subject, email, actor, ip,
	user_agent, request_id, reason, detail`

// AppendAudit records an event. An empty ID gets a fresh time-ordered one
// (tenants.NewID with the evt_ prefix, from e.Time), so that listing by id
// is listing by time; a zero Time is the wall clock's.
func (s *Store) AppendAudit(ctx context.Context, e audit.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.ID == "" {
		id, err := tenants.NewID(tenants.PrefixAudit, e.Time, rand.Reader)
		if err != nil {
			return fmt.Errorf("store: append audit %s: %w", e.Type, err)
		}
		e.ID = id
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_events (`+auditColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		e.ID, s.d.time(e.Time), string(e.Type), e.TenantID, e.ConnectionID, e.ClientID, e.Subject, e.Email, e.Actor, e.IP,
		e.UserAgent, e.RequestID, e.Reason, e.Detail)
	if err != nil {
		return s.dbError(fmt.Sprintf("store: append audit %s %s", e.Type, e.ID), err)
	}
	return nil
}

// ListAudit returns events newest first (by id, which is time-ordered),
// filtered by tenant, type and time (Since inclusive, Until exclusive).
// Filter.After is the cursor: it selects events whose id sorts before it.
// The limit is clamped to 1..200 and defaults to 50. next is the id to pass
// as After for the following page, empty at the end.
func (s *Store) ListAudit(ctx context.Context, f audit.Filter) (items []audit.Event, next string, err error) {
	limit := tenants.Page{Limit: f.Limit}.Normalized().Limit
	// The WHERE clause lists only the filters in use, so each combination
	// gets a plan that can use its index; values always go in as arguments.
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.TenantID != "" {
		add("tenant_id = $%d", f.TenantID)
	}
	if f.Type != "" {
		add("type = $%d", string(f.Type))
	}
	if !f.Since.IsZero() {
		add("time >= $%d", s.d.time(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < $%d", s.d.time(f.Until))
	}
	if f.After != "" {
		add("id < $%d", f.After)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))

	const op = "store: list audit events"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", s.dbError(op, err)
	}
	defer rows.Close()
	var list []audit.Event
	for rows.Next() {
		var e audit.Event
		if err := rows.Scan(&e.ID, tm(&e.Time), &e.Type, &e.TenantID, &e.ConnectionID, &e.ClientID, &e.Subject, &e.Email,
			&e.Actor, &e.IP, &e.UserAgent, &e.RequestID, &e.Reason, &e.Detail); err != nil {
			return nil, "", s.dbError(op, err)
		}
		list = append(list, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.dbError(op, err)
	}
	items, next = cut(list, limit, func(e audit.Event) string { return e.ID })
	return items, next, nil
}

// PruneAudit deletes events older than before, in batches, so that a large
// backlog never holds one long transaction (or SQLite's single write lock)
// for long.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (deleted int64, err error) {
	return s.deleteInBatches(ctx, "store: prune audit events",
		`DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE time < $1 LIMIT $2)`, s.d.time(before))
}

// gcBatch bounds the rows one garbage-collection statement deletes.
const gcBatch = 1000

// deleteInBatches runs stmt, whose last parameter is the batch size, until
// it deletes fewer rows than a batch. Each run is its own short
// transaction.
func (s *Store) deleteInBatches(ctx context.Context, op, stmt string, args ...any) (deleted int64, err error) {
	args = append(args, gcBatch)
	for {
		res, err := s.db.ExecContext(ctx, stmt, args...)
		if err != nil {
			return deleted, s.dbError(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, s.dbError(op, err)
		}
		deleted += n
		if n < gcBatch {
			return deleted, nil
		}
	}
}
