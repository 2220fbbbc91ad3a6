package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/store"
)

func testAuditAppendList(t *testing.T, s *store.Store) {
	ctx := t.Context()
	full := audit.Event{
		ID: "evt_full", Time: base, Type: audit.LoginFailed, TenantID: "ten_a", ConnectionID: "conn_a",
		ClientID: "cli_a", Subject: "usr_a", Email: "ada@acme.example", Actor: "system", IP: "192.0.2.1",
		UserAgent: "Mozilla/5.0", RequestID: "req_1", Reason: "signature_invalid", Detail: "no certificate matched",
	}
	check(t, s.AppendAudit(ctx, full), "append")
	wantIs(t, s.AppendAudit(ctx, full), store.ErrAlreadyExists, "append the same id twice")
	got, next, err := s.ListAudit(ctx, audit.Filter{})
	check(t, err, "list")
	equal(t, "events", got, []audit.Event{full})
	equal(t, "next", next, "")

	// Events without an id get a time-ordered one: newest first is by time.
	var want []string
	for i := range 7 {
		check(t, s.AppendAudit(ctx, audit.Event{Time: base.Add(time.Duration(i+1) * time.Second), Type: audit.LoginSucceeded, TenantID: "ten_b", Detail: fmt.Sprint(i)}), "append")
	}
	all, _, err := s.ListAudit(ctx, audit.Filter{TenantID: "ten_b"})
	check(t, err, "list")
	for i, e := range all {
		if e.ID == "" || e.Detail != fmt.Sprint(6-i) {
			t.Fatalf("event %d of the newest-first list: %+v", i, e)
		}
		want = append(want, e.ID)
	}
	got2 := walk(t, 3, func(after string) ([]string, string, error) {
		items, next, err := s.ListAudit(ctx, audit.Filter{TenantID: "ten_b", Limit: 3, After: after})
		var ids []string
		for _, e := range items {
			ids = append(ids, e.ID)
		}
		return ids, next, err
	})
	equal(t, "walked ids", got2, want)

	// The limit is clamped to 1..200 and defaults to 50.
	for i := range 200 {
		check(t, s.AppendAudit(ctx, audit.Event{Time: base, Type: audit.LoginSucceeded, TenantID: "ten_many", ID: fmt.Sprintf("evt_m%03d", i)}), "append")
	}
	limits := []struct{ limit, want int }{{0, 50}, {-5, 50}, {1, 1}, {200, 200}, {1000, 200}}
	for _, tt := range limits {
		items, next, err := s.ListAudit(ctx, audit.Filter{TenantID: "ten_many", Limit: tt.limit})
		check(t, err, "list")
		equal(t, fmt.Sprintf("page size for limit %d", tt.limit), len(items), tt.want)
		if tt.want < 200 && next == "" {
			t.Fatalf("limit %d: no cursor although more events follow", tt.limit)
		}
	}
}

func testAuditFilters(t *testing.T, s *store.Store) {
	ctx := t.Context()
	events := []audit.Event{
		{ID: "evt_1", Time: base, Type: audit.LoginSucceeded, TenantID: "ten_a"},
		{ID: "evt_2", Time: base.Add(time.Minute), Type: audit.LoginFailed, TenantID: "ten_a"},
		{ID: "evt_3", Time: base.Add(2 * time.Minute), Type: audit.LoginSucceeded, TenantID: "ten_b"},
		{ID: "evt_4", Time: base.Add(3 * time.Minute), Type: audit.TenantCreated},
	}
	for _, e := range events {
		check(t, s.AppendAudit(ctx, e), "append")
	}
	tests := []struct {
		name   string
		filter audit.Filter
		want   []string
	}{
		{"all", audit.Filter{}, []string{"evt_4", "evt_3", "evt_2", "evt_1"}},
		{"tenant", audit.Filter{TenantID: "ten_a"}, []string{"evt_2", "evt_1"}},
		{"type", audit.Filter{Type: audit.LoginSucceeded}, []string{"evt_3", "evt_1"}},
		{"tenant and type", audit.Filter{TenantID: "ten_a", Type: audit.LoginSucceeded}, []string{"evt_1"}},
		{"since is inclusive", audit.Filter{Since: base.Add(time.Minute)}, []string{"evt_4", "evt_3", "evt_2"}},
		{"until is exclusive", audit.Filter{Until: base.Add(2 * time.Minute)}, []string{"evt_2", "evt_1"}},
		{"window", audit.Filter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, []string{"evt_3", "evt_2"}},
		{"after", audit.Filter{After: "evt_3"}, []string{"evt_2", "evt_1"}},
		{"nothing", audit.Filter{TenantID: "ten_none"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, next, err := s.ListAudit(ctx, tt.filter)
			check(t, err, "list")
			var ids []string
			for _, e := range items {
				ids = append(ids, e.ID)
			}
			equal(t, "ids", ids, tt.want)
			equal(t, "next", next, "")
		})
	}
}

func testAuditPrune(t *testing.T, s *store.Store) {
	ctx := t.Context()
	const old = 2500 // more than two batches
	tx, err := s.DB().BeginTx(ctx, nil)
	check(t, err, "begin")
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (id, time, type) VALUES ($1, $2, 'login.succeeded')`)
	check(t, err, "prepare")
	for i := range old {
		_, err := stmt.ExecContext(ctx, fmt.Sprintf("evt_old%05d", i), dbTime(s, base.Add(-time.Duration(i+1)*time.Second)))
		check(t, err, "insert old event")
	}
	check(t, stmt.Close(), "close statement")
	check(t, tx.Commit(), "commit")
	for i := range 3 {
		check(t, s.AppendAudit(ctx, audit.Event{ID: fmt.Sprintf("evt_new%d", i), Time: base.Add(time.Duration(i) * time.Second), Type: audit.LoginFailed}), "append")
	}

	n, err := s.PruneAudit(ctx, base)
	check(t, err, "prune")
	equal(t, "pruned", n, int64(old))
	items, _, err := s.ListAudit(ctx, audit.Filter{})
	check(t, err, "list")
	equal(t, "events left", len(items), 3)
	n, err = s.PruneAudit(ctx, base)
	check(t, err, "prune again")
	equal(t, "pruned again", n, int64(0))
}
