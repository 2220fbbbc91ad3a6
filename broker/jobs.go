package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/tenants"
)

// jobStore is what the background jobs need beyond tenants.Store.
type jobStore interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
}

// JobOptions set how often the background jobs run.
type JobOptions struct {
	MetadataPoll   time.Duration // how often due metadata refreshes are looked for (1m)
	GCEvery        time.Duration // 5m
	AuditRetention time.Duration // 90 days; zero keeps events forever
	PruneEvery     time.Duration // 1h
}

func (o JobOptions) withDefaults() JobOptions {
	if o.MetadataPoll == 0 {
		o.MetadataPoll = time.Minute
	}
	if o.GCEvery == 0 {
		o.GCEvery = 5 * time.Minute
	}
	if o.PruneEvery == 0 {
		o.PruneEvery = time.Hour
	}
	return o
}

// Run runs the background jobs until ctx is done. Every replica runs it;
// a lease in the store makes exactly one replica do each job at a time,
// and another takes over within one lease period if that replica dies.
func (a *App) Run(ctx context.Context, opts JobOptions) {
	opts = opts.withDefaults()
	var b [8]byte
	_, _ = rand.Read(b[:])
	holder := hex.EncodeToString(b[:])
	jobs := []struct {
		name  string
		every time.Duration
		run   func(context.Context) error
	}{
		{"metadata_refresh", opts.MetadataPoll, a.refreshMetadata},
		{"gc", opts.GCEvery, a.collectGarbage},
		{"audit_prune", opts.PruneEvery, func(ctx context.Context) error { return a.pruneAudit(ctx, opts.AuditRetention) }},
	}
	done := make(chan struct{})
	for _, j := range jobs {
		go func() {
			defer func() { done <- struct{}{} }()
			t := time.NewTicker(j.every)
			defer t.Stop()
			for {
				a.runJob(ctx, j.name, holder, j.every, j.run)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	for range jobs {
		<-done
	}
}

func (a *App) runJob(ctx context.Context, name, holder string, every time.Duration, run func(context.Context) error) {
	// The lease outlives one run so a slow run is not doubled, and expires
	// soon enough for another replica to take over.
	ok, err := a.deps.Store.AcquireLease(ctx, "job:"+name, holder, every+time.Minute, a.cfg.Clock.Now())
	if err != nil {
		if ctx.Err() == nil {
			a.metrics.jobRuns.WithLabelValues(name, "lease_error").Inc()
			a.cfg.Logger.WarnContext(ctx, "job lease", slog.String("job", name), slog.Any("error", err))
		}
		return
	}
	if !ok {
		return
	}
	jctx, cancel := context.WithTimeout(ctx, every)
	defer cancel()
	if err := run(jctx); err != nil {
		a.metrics.jobRuns.WithLabelValues(name, "error").Inc()
		a.cfg.Logger.ErrorContext(ctx, "job failed", slog.String("job", name), slog.Any("error", err))
		return
	}
	a.metrics.jobRuns.WithLabelValues(name, "ok").Inc()
}

// refreshMetadataBatch bounds one run; the rest wait for the next poll.
const refreshMetadataBatch = 20

// refreshMetadata fetches due IdP metadata URLs. A failure keeps the last
// good IdP config (logins keep working), records the error on the
// connection and in the audit log, and retries sooner than the interval.
func (a *App) refreshMetadata(ctx context.Context) error {
	now := a.cfg.Clock.Now()
	due, err := a.dir.Store.ConnectionsDueForRefresh(ctx, now, refreshMetadataBatch)
	if err != nil {
		return fmt.Errorf("listing connections due for refresh: %w", err)
	}
	for _, c := range due {
		idp, ferr := fetchIdPMetadata(ctx, a.deps.Fetcher, c.Metadata.URL)
		changed := false
		_, err := a.dir.Store.UpdateConnection(ctx, c.ID, func(cur *tenants.Connection) error {
			if cur.Metadata.URL != c.Metadata.URL {
				return nil // the operator changed the source meanwhile
			}
			if ferr != nil {
				cur.Metadata.LastError = truncate(ferr.Error(), 500)
				cur.Metadata.NextRefreshAt = now.Add(min(a.cfg.MetadataRefreshInterval, 15*time.Minute))
				return nil
			}
			cur.Metadata.RefreshedAt, cur.Metadata.LastError = now, ""
			cur.Metadata.NextRefreshAt = now.Add(a.cfg.MetadataRefreshInterval)
			next := cur.IdP
			next.EntityID, next.SSORedirectURL, next.SSOPostURL, next.Certificates = idp.EntityID, idp.SSORedirectURL, idp.SSOPostURL, idp.Certificates
			if !reflect.DeepEqual(next, cur.IdP) {
				next.MetadataXML = idp.MetadataXML
				probe := *cur
				probe.IdP = next
				if err := tenants.ValidateConnection(&probe); err != nil {
					cur.Metadata.LastError = truncate("the fetched metadata is not usable: "+err.Error(), 500)
					ferr = err
					return nil
				}
				// A new UpdatedAt makes every replica rebuild its cached SP.
				cur.IdP, cur.UpdatedAt, changed = next, now, true
			}
			return nil
		})
		if err != nil {
			a.cfg.Logger.ErrorContext(ctx, "metadata refresh: saving", slog.String("connection_id", c.ID), slog.Any("error", err))
			continue
		}
		ev := audit.Event{TenantID: c.TenantID, ConnectionID: c.ID}
		switch {
		case ferr != nil:
			ev.Type, ev.Reason, ev.Detail = audit.ConnectionMetadataFailed, "metadata_refresh_failed", truncate(ferr.Error(), 1000)
			a.cfg.Logger.WarnContext(ctx, "metadata refresh failed; keeping the last good configuration",
				slog.String("connection_id", c.ID), slog.Any("error", ferr))
		case changed:
			ev.Type, ev.Detail = audit.ConnectionMetadataRefresh, "IdP configuration changed"
		default:
			continue
		}
		a.audit.record(ctx, "system", ev)
	}
	return nil
}

// collectGarbage deletes expired rows of every kind.
func (a *App) collectGarbage(ctx context.Context) error {
	n, err := a.deps.Store.DeleteExpired(ctx, a.cfg.Clock.Now())
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	var m int64
	if a.deps.OIDC != nil {
		if m, err = a.deps.OIDC.DeleteExpired(ctx); err != nil {
			return fmt.Errorf("gc: OIDC state: %w", err)
		}
	}
	if n+m > 0 {
		a.cfg.Logger.InfoContext(ctx, "expired records deleted", slog.Int64("directory", n), slog.Int64("oidc", m))
	}
	return nil
}

func (a *App) pruneAudit(ctx context.Context, retention time.Duration) error {
	if retention <= 0 {
		return nil
	}
	n, err := a.deps.Store.PruneAudit(ctx, a.cfg.Clock.Now().Add(-retention))
	if err != nil {
		return fmt.Errorf("audit pruning: %w", err)
	}
	if n > 0 {
		a.cfg.Logger.InfoContext(ctx, "audit events pruned", slog.Int64("deleted", n))
	}
	return nil
}
