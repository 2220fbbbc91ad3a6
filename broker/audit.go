package broker

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/tenants"
)

// auditRecorder stamps events with who/when/where and appends them. A
// failed append is logged, never returned: an audit outage must not turn
// into a login outage, and the log line still records what happened.
type auditRecorder struct {
	log    audit.Log
	clock  tenants.Clock
	random io.Reader
	logger *slog.Logger
}

const maxUserAgent = 256

func (a *auditRecorder) record(ctx context.Context, r *http.Request, actor string, e audit.Event) {
	now := a.clock.Now()
	id, err := tenants.NewID(tenants.PrefixAudit, now, a.random)
	if err != nil {
		a.logger.ErrorContext(ctx, "audit event id", slog.Any("error", err))
		return
	}
	e.ID, e.Time, e.Actor = id, now, actor
	if r != nil {
		e.IP = clientIP(r)
		e.UserAgent = boundedUTF8(r.UserAgent(), maxUserAgent)
		e.RequestID = requestID(r.Context())
	}
	if err := a.log.AppendAudit(ctx, e); err != nil {
		a.logger.ErrorContext(ctx, "audit event not recorded",
			slog.String("type", string(e.Type)), slog.String("tenant_id", e.TenantID), slog.Any("error", err))
	}
}

// admin records an operator change made through the admin API.
func (a *auditRecorder) admin(r *http.Request, e audit.Event) {
	a.record(r.Context(), r, "admin", e)
}

// boundedUTF8 cuts s to at most n bytes on a rune boundary and drops
// invalid UTF-8, so hostile headers cannot bloat or corrupt the audit log.
func boundedUTF8(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
