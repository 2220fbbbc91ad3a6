package broker

import (
	"context"
	"log/slog"
	"strings"
)

// NewLogHandler wraps h so that every record carries the request id from
// its context, and so that attributes whose key names a secret are dropped
// to "[redacted]" whatever their type. The types that hold secrets
// (tenants.Secret) already redact themselves; this is the second line for
// a value that reached a log call as a plain string.
func NewLogHandler(h slog.Handler) slog.Handler {
	return &logHandler{next: h}
}

type logHandler struct {
	next slog.Handler
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if id := requestID(ctx); id != "" {
		out.AddAttrs(slog.String("request_id", id))
	}
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redactAttr(a)
	}
	return &logHandler{next: h.next.WithAttrs(clean)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: h.next.WithGroup(name)}
}

// deniedKeyParts are substrings of attribute keys that never carry a
// printable value.
var deniedKeyParts = []string{
	"password", "secret", "token", "authorization", "cookie", "samlresponse",
	"samlrequest", "signature", "assertion_xml", "private", "code_verifier", "master_key",
}

func redactAttr(a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		group := a.Value.Group()
		clean := make([]slog.Attr, len(group))
		for i, g := range group {
			clean[i] = redactAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(clean...)}
	}
	k := strings.ToLower(a.Key)
	for _, d := range deniedKeyParts {
		if strings.Contains(k, d) {
			return slog.String(a.Key, "[redacted]")
		}
	}
	if k == "code" {
		return slog.String(a.Key, "[redacted]")
	}
	return a
}
