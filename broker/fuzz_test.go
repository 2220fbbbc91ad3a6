package broker_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// FuzzHostedPageForm posts arbitrary form bodies to the hosted page with a
// valid login and CSRF token (so the fuzzer gets past the first check) and
// requires a well-formed answer: never a 5xx, never a panic, never a
// redirect anywhere but the IdP, and the typed text only ever HTML-escaped.
func FuzzHostedPageForm(f *testing.F) {
	for _, s := range []string{
		"jane@acme.com", "JANE@ACME.COM ", "jane@unknown.example", "jane@", "@acme.com", "jane@acme.com\x00",
		"<script>alert(1)</script>@acme.com", "jane@xn--bcher-kva.example", "jane@bücher.example", strings.Repeat("a", 2000),
		"a@b@acme.com", "jane@acme.com&connection=conn_0", "\"><img src=x>@acme.com",
	} {
		f.Add(s, "")
	}
	f.Add("jane@acme.com", "conn_00000000000000000000000000")

	e := newEnv(f, storetest.Backends()[0], envOptions{})
	_, conn := e.tenant("Acme", "acme.com")
	c := e.client(nil)
	f.Add("jane@acme.com", conn)
	br := newBrowser(f)
	p := br.open(http.MethodGet, c.authURL(newFlow(), nil), nil)
	form := p.forms(f)[0]
	loginURL, _ := url.Parse(e.issuer + "/login")
	cookies := br.http.Jar.Cookies(loginURL)
	idpHost := strings.TrimPrefix(e.idp.URL, "http://")

	f.Fuzz(func(t *testing.T, email, connection string) {
		body := url.Values{"id": {form.fields.Get("id")}, "csrf": {form.fields.Get("csrf")}, "email": {email}}
		if connection != "" {
			body.Set("connection", connection)
		}
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/login", strings.NewReader(body.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		page, _ := io.ReadAll(res.Body)
		switch {
		case res.StatusCode >= 500:
			t.Fatalf("status %d for email %q", res.StatusCode, email)
		case res.StatusCode == http.StatusSeeOther:
			loc, err := url.Parse(res.Header.Get("Location"))
			if err != nil || loc.Host != idpHost {
				t.Fatalf("redirect to %q for email %q", res.Header.Get("Location"), email)
			}
		default:
			// The typed email comes back in the form's email field. Parsed
			// as a browser would, the field must hold exactly what was
			// typed: text that escaped the attribute would change the DOM.
			got, found := emailFieldValue(t, string(page))
			if found && utf8.ValidString(email) && got != browserNormalized(strings.TrimSpace(email)) && got != browserNormalized(email) {
				t.Fatalf("email field holds %q after submitting %q", got, email)
			}
		}
	})
}

// emailFieldValue finds the value of the page's input named email.
func emailFieldValue(t *testing.T, page string) (string, bool) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var val string
	var found bool
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			if attrs["name"] == "email" && !found {
				val, found = attrs["value"], true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return val, found
}

// browserNormalized applies the HTML input-stream preprocessing (CR LF and
// CR become LF, NUL becomes U+FFFD) that any text goes through in a page.
func browserNormalized(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
