package faulttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// browser is a user agent with a cookie jar. It follows redirects and
// submits forms one request at a time, so a test knows exactly which
// request was in flight when the broker died.
type browser struct {
	hc *http.Client
	// email is the address typed on the hosted page and the user the test
	// IdP signs in (sent to it in a header).
	email string
	// assertionID, when set, fixes the ID of the IdP's assertion.
	assertionID string
}

const (
	hdrEmail       = "X-Faulttest-Email"
	hdrAssertionID = "X-Faulttest-Assertion-Id"
)

func newBrowser(email string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{
		email: email,
		hc: &http.Client{Jar: jar, Timeout: 15 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, MaxIdleConnsPerHost: 4,
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

func (b *browser) close() { b.hc.CloseIdleConnections() }

// step is one request a browser makes.
type step struct {
	method string
	url    string
	form   url.Values // POST body
}

func (s step) String() string { return s.method + " " + s.url }

type page struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

// transportError is a request that got no HTTP response (the broker died,
// refused the connection, or timed out): the request is in flight from
// the user's point of view.
type transportError struct {
	step step
	err  error
}

func (e *transportError) Error() string { return fmt.Sprintf("%s: %v", e.step, e.err) }
func (e *transportError) Unwrap() error { return e.err }

// do makes one request without following redirects.
func (b *browser) do(ctx context.Context, s step) (page, error) {
	var body io.Reader
	if s.method == http.MethodPost {
		body = strings.NewReader(s.form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, s.method, s.url, body)
	if err != nil {
		return page{}, fmt.Errorf("%s: %w", s, err)
	}
	if s.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set(hdrEmail, b.email)
	if b.assertionID != "" {
		req.Header.Set(hdrAssertionID, b.assertionID)
	}
	res, err := b.hc.Do(req)
	if err != nil {
		return page{}, &transportError{step: s, err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return page{}, &transportError{step: s, err: err}
	}
	return page{URL: req.URL, Status: res.StatusCode, Header: res.Header, Body: string(raw)}, nil
}

// follow makes s and then what the pages ask for: it follows redirects
// and submits a page's first form (auto-post pages, the IdP's page, the
// hosted page with the email filled in). It stops before requesting a URL
// for which stop is true and returns that URL with the page that led to
// it; or it returns a nil URL and the last page when a page asks for
// nothing more (an error page, the app's page).
func (b *browser) follow(ctx context.Context, s step, stop func(*url.URL) bool) (*url.URL, page, error) {
	for range 16 {
		p, err := b.do(ctx, s)
		if err != nil {
			return nil, p, err
		}
		var next step
		switch {
		case p.Status >= 300 && p.Status < 400:
			loc, err := p.URL.Parse(p.Header.Get("Location"))
			if err != nil || p.Header.Get("Location") == "" {
				return nil, p, fmt.Errorf("%s: %d without a usable Location", s, p.Status)
			}
			next = step{method: http.MethodGet, url: loc.String()}
		case p.Status == http.StatusOK:
			forms, err := p.forms()
			if err != nil {
				return nil, p, fmt.Errorf("%s: %w", s, err)
			}
			if len(forms) == 0 {
				return nil, p, nil
			}
			f := forms[0]
			if _, ok := f.fields["email"]; ok && strings.HasPrefix(p.URL.Path, "/login") {
				f.fields.Set("email", b.email)
			}
			next = f.step()
		default:
			return nil, p, nil
		}
		u, _ := url.Parse(next.url)
		if stop != nil && stop(u) {
			return u, p, nil
		}
		s = next
	}
	return nil, page{}, fmt.Errorf("more than 16 steps from %s", s)
}

// htmlForm is a form with its fields' initial values.
type htmlForm struct {
	method string
	action string
	fields url.Values
}

func (f htmlForm) step() step {
	if f.method == http.MethodGet {
		u, _ := url.Parse(f.action)
		u.RawQuery = f.fields.Encode()
		return step{method: http.MethodGet, url: u.String()}
	}
	return step{method: http.MethodPost, url: f.action, form: f.fields}
}

// forms parses the page's forms: inputs, and selects with their selected
// (or first) option.
func (p page) forms() ([]htmlForm, error) {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return nil, fmt.Errorf("parsing the page: %w", err)
	}
	var out []htmlForm
	var cur *htmlForm
	attrs := func(n *html.Node) map[string]string {
		m := map[string]string{}
		for _, a := range n.Attr {
			m[a.Key] = a.Val
		}
		return m
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := attrs(n)
			switch n.Data {
			case "form":
				action, err := p.URL.Parse(a["action"])
				if err != nil {
					action = p.URL
				}
				out = append(out, htmlForm{method: strings.ToUpper(a["method"]), action: action.String(), fields: url.Values{}})
				if out[len(out)-1].method == "" {
					out[len(out)-1].method = http.MethodGet
				}
				cur = &out[len(out)-1]
			case "input":
				if cur != nil && a["name"] != "" {
					cur.fields.Set(a["name"], a["value"])
				}
			case "select":
				if cur != nil && a["name"] != "" {
					cur.fields.Set(a["name"], selectedOption(n))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out, nil
}

func selectedOption(sel *html.Node) string {
	first, have := "", false
	var walk func(n *html.Node) (string, bool)
	walk = func(n *html.Node) (string, bool) {
		if n.Type == html.ElementNode && n.Data == "option" {
			v, selected := "", false
			for _, a := range n.Attr {
				switch a.Key {
				case "value":
					v = a.Val
				case "selected":
					selected = true
				}
			}
			if !have {
				first, have = v, true
			}
			if selected {
				return v, true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if v, ok := walk(c); ok {
				return v, true
			}
		}
		return "", false
	}
	if v, ok := walk(sel); ok {
		return v
	}
	return first
}

// isTransport reports whether err means no response came back.
func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}
