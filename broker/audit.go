package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/oidcprovider"
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

// record stamps e with its id, time, actor and the request's id, client
// IP and user agent (from ctx, so it works without the *http.Request) and
// appends it.
func (a *auditRecorder) record(ctx context.Context, actor string, e audit.Event) {
	now := a.clock.Now()
	id, err := tenants.NewID(tenants.PrefixAudit, now, a.random)
	if err != nil {
		a.logger.ErrorContext(ctx, "audit event id", slog.Any("error", err))
		return
	}
	e.ID, e.Time, e.Actor = id, now, actor
	e.IP = middleware.GetClientIP(ctx)
	e.UserAgent, _ = ctx.Value(userAgentKey).(string)
	e.RequestID = requestID(ctx)
	if err := a.log.AppendAudit(ctx, e); err != nil {
		a.logger.ErrorContext(ctx, "audit event not recorded",
			slog.String("type", string(e.Type)), slog.String("tenant_id", e.TenantID), slog.Any("error", err))
	}
}

// admin records an operator change made through the admin API.
func (a *auditRecorder) admin(r *http.Request, e audit.Event) {
	a.record(r.Context(), "admin", e)
}

// revocation records tokens the OIDC provider revoked.
func (a *auditRecorder) revocation(ctx context.Context, r oidcprovider.Revocation) {
	actor := "system" // code replay, refresh-token reuse
	switch r.Reason {
	case "revoked_by_client":
		actor = "client"
	case "logout":
		actor = "user"
	}
	a.record(ctx, actor, audit.Event{
		Type: audit.TokenRevoked, TenantID: r.TenantID, ConnectionID: r.ConnectionID, ClientID: r.ClientID, Subject: r.Subject,
		Reason: r.Reason, Detail: fmt.Sprintf("%d grants, %d access tokens", r.Grants, r.AccessTokens),
	})
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
