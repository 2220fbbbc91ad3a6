package broker

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ssobroker/ssobroker/templates"
)

// pages renders the HTML pages. Every page is parsed once at startup from
// the base layout; a missing page fails the start, not a user's request.
type pages struct {
	set      map[string]*template.Template
	fallback []byte // a generic error page rendered at startup
	log      *slog.Logger
}

func newPages(log *slog.Logger) (*pages, error) {
	base, err := template.New("base.html").ParseFS(templates.FS, "base.html")
	if err != nil {
		return nil, fmt.Errorf("templates: base: %w", err)
	}
	p := &pages{set: map[string]*template.Template{}, log: log}
	for _, name := range templates.Pages {
		clone, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", name, err)
		}
		t, err := clone.ParseFS(templates.FS, name)
		if err != nil {
			return nil, fmt.Errorf("templates: %s: %w", name, err)
		}
		p.set[name] = t
	}
	var buf bytes.Buffer
	err = p.set["error.html"].ExecuteTemplate(&buf, "base", errorPage{
		Title: "Something went wrong", Message: "We could not complete your sign-in. Please try again.",
	})
	if err != nil {
		return nil, fmt.Errorf("templates: rendering the fallback error page: %w", err)
	}
	p.fallback = buf.Bytes()
	return p, nil
}

// pageCSP is the Content-Security-Policy of our pages: nothing from
// anywhere but our own origin, no inline script or style, no framing.
// formAction is added to form-action (the IdP's origin on the SAML POST
// binding page); empty means form-action is left out, because the email
// page's form redirects to whatever IdP the email leads to, and browsers
// apply form-action to that redirect too.
func pageCSP(formAction string) string {
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
	if formAction != "" {
		csp += "; form-action 'self' " + formAction
	}
	return csp
}

// render writes page with status. It renders into a buffer first, so a
// template error becomes the fallback page instead of half a page.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, data any, formAction string) {
	var buf bytes.Buffer
	t, ok := p.set[name]
	if !ok {
		p.log.ErrorContext(r.Context(), "unknown page", slog.String("page", name))
		status, buf = http.StatusInternalServerError, *bytes.NewBuffer(p.fallback)
	} else if err := t.ExecuteTemplate(&buf, "base", data); err != nil {
		p.log.ErrorContext(r.Context(), "rendering page", slog.String("page", name), slog.Any("error", err))
		status, buf = http.StatusInternalServerError, *bytes.NewBuffer(p.fallback)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP(formAction))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage is the data of error.html. Its texts are fixed per class of
// failure: internal causes go to the log and the audit trail, never here.
type errorPage struct {
	Title      string
	Message    string
	RetryURL   string
	BackURL    string
	ClientName string
	RequestID  string
}

// staticHandler serves templates/static with a long cache lifetime (the
// files change only with the binary).
func staticHandler() http.Handler {
	sub, err := fs.Sub(templates.FS, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	files := http.FileServer(http.FS(sub))
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
}
