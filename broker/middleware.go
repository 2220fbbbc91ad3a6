package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	userAgentKey
	logAttrsKey
)

// validRequestID bounds what we accept from an upstream proxy's
// X-Request-Id: chi's RequestID middleware trusts the header verbatim, which
// lets a client inject arbitrary text into every log line.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,64}$`)

// withRequestID takes a well-formed X-Request-Id from upstream or makes one,
// puts it in the context and echoes it so users can quote it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		// The user agent rides along so that audit events raised deep in
		// a call chain (a revocation inside the OIDC provider) carry it.
		ctx = context.WithValue(ctx, userAgentKey, boundedUTF8(r.UserAgent(), maxUserAgent))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// logAttrs collects attributes that handlers learn while serving (tenant,
// connection) so the access log line and every other line carry them.
type logAttrs struct{ attrs []slog.Attr }

// addLogAttrs adds or replaces attributes of the request's access log line.
func addLogAttrs(ctx context.Context, attrs ...slog.Attr) {
	la, ok := ctx.Value(logAttrsKey).(*logAttrs)
	if !ok {
		return
	}
next:
	for _, a := range attrs {
		for i := range la.attrs {
			if la.attrs[i].Key == a.Key {
				la.attrs[i] = a
				continue next
			}
		}
		la.attrs = append(la.attrs, a)
	}
}

// clientIP is the client address as established by the ClientIPFrom*
// middleware (never a raw, spoofable header).
func clientIP(r *http.Request) string {
	return middleware.GetClientIP(r.Context())
}

// accessLog logs one line per request with its route pattern (never the raw
// path, which may carry ids, and never the query, which may carry codes).
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			la := &logAttrs{}
			r = r.WithContext(context.WithValue(r.Context(), logAttrsKey, la))
			next.ServeHTTP(ww, r)
			route := routeLabel(r)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			attrs := append([]slog.Attr{
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Duration("duration", time.Since(start)),
				slog.String("ip", clientIP(r)),
			}, la.attrs...)
			log.LogAttrs(r.Context(), level, "http request", attrs...)
		})
	}
}

// recoverPanics turns a panic into a 500 with a log line and a stack, so a
// bug in one request never takes the process down.
func recoverPanics(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic serving request",
						slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
					writeProblem(w, r, &apiError{Status: http.StatusInternalServerError, Type: "internal", Detail: "internal error"})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// securityHeaders applies to every response; pages that render HTML get a
// stricter set on top (see pages.go).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
