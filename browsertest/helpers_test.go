package browsertest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// These helpers walk the login flow like a user: real mouse clicks and key
// presses, text typed into the focused field.

// openHostedPage opens the demo app and presses "Sign in with SSO" with the
// hint field left empty, landing on the hosted page.
func openHostedPage(tb *tab, s *stack) {
	tb.t.Helper()
	tb.navigate(s.issuer + "/demo/")
	tb.navigation(s.issuer+"/login?id=", func() { tb.click(`form[action="/demo/login"] button[type=submit]`) })
}

// fill replaces the value of the field matching selector with text, typed.
func fill(tb *tab, selector, text string) {
	tb.t.Helper()
	tb.click(selector)
	js, _ := json.Marshal(selector)
	tb.eval(fmt.Sprintf(`document.querySelector(%s).select()`, js), nil)
	tb.typeText(text)
}

// submitEmail types email into the focused hosted-page field and presses
// Enter, waiting for the page at wantPrefix.
func submitEmail(tb *tab, email, wantPrefix string) {
	tb.t.Helper()
	fill(tb, "#email", email)
	tb.navigation(wantPrefix, func() { tb.press("Enter", 0) })
}

// simulatorSignIn picks a scenario on the simulator page and presses "Sign
// in"; the simulator's SAML POST page then submits itself to the ACS and
// the browser ends at wantPrefix. Nothing is clicked after "Sign in".
func simulatorSignIn(tb *tab, s *stack, scenario, wantPrefix string) {
	tb.t.Helper()
	if !strings.HasPrefix(tb.evalString(`location.href`), s.idp+"/simulator/") {
		tb.t.Fatalf("not on the simulator page\n%s", tb.describe())
	}
	tb.eval(fmt.Sprintf(`document.getElementById("scenario").value = %q`, scenario), nil)
	tb.navigation(wantPrefix, func() { tb.click(`form[action="/simulator/respond"] button[type=submit]`) })
}

// signedInClaims asserts the demo app's result page and returns its ID
// token claims.
func signedInClaims(tb *tab) map[string]any {
	tb.t.Helper()
	var page struct {
		H2     []string `json:"h2"`
		Claims string   `json:"claims"`
		Alert  string   `json:"alert"`
	}
	tb.eval(`({h2: [...document.querySelectorAll("h2")].map(e => e.textContent.trim()),
	  claims: (document.querySelector("pre") || {}).textContent || "",
	  alert: (document.querySelector(".alert") || {}).textContent || ""})`, &page)
	if len(page.H2) == 0 || page.H2[0] != "Signed in" {
		tb.t.Fatalf("the demo app does not say Signed in (alert %q)\n%s", page.Alert, tb.describe())
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(page.Claims), &claims); err != nil {
		tb.t.Fatalf("ID token claims on the page: %v\n%s", err, page.Claims)
	}
	return claims
}

// axNode is a node of the browser's accessibility tree: what a screen
// reader is told.
type axNode struct {
	Ignored bool `json:"ignored"`
	Role    struct {
		Value string `json:"value"`
	} `json:"role"`
	Name struct {
		Value string `json:"value"`
	} `json:"name"`
	Description struct {
		Value string `json:"value"`
	} `json:"description"`
	Properties []struct {
		Name  string `json:"name"`
		Value struct {
			Value any `json:"value"`
		} `json:"value"`
	} `json:"properties"`
}

func (n axNode) prop(name string) any {
	for _, p := range n.Properties {
		if p.Name == name {
			return p.Value.Value
		}
	}
	return nil
}

// axFind returns the unignored accessibility nodes with role.
func axFind(tb *tab, role string) []axNode {
	tb.t.Helper()
	var tree struct {
		Nodes []axNode `json:"nodes"`
	}
	tb.do("Accessibility.getFullAXTree", nil, &tree)
	var out []axNode
	for _, n := range tree.Nodes {
		if !n.Ignored && n.Role.Value == role {
			out = append(out, n)
		}
	}
	return out
}

// focused describes document.activeElement.
func focused(tb *tab) string {
	tb.t.Helper()
	return tb.evalString(`(() => { const e = document.activeElement; if (!e || e === document.body) return "body";
	  return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.tagName === "A" && e.className ? "." + e.className.split(" ").join(".") : "") +
	    (e.tagName === "INPUT" || e.tagName === "SELECT" ? "" : " " + JSON.stringify(e.textContent.trim())); })()`)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// cspHeaders returns the Content-Security-Policy of every document response
// whose URL starts with prefix.
func cspHeaders(tb *tab, prefix string) []string {
	var out []string
	for _, raw := range tb.eventsOf("Network.responseReceived") {
		var p struct {
			Type     string `json:"type"`
			Response struct {
				URL     string            `json:"url"`
				Headers map[string]string `json:"headers"`
			} `json:"response"`
		}
		_ = json.Unmarshal(raw, &p)
		if p.Type == "Document" && strings.HasPrefix(p.Response.URL, prefix) {
			for k, v := range p.Response.Headers {
				if strings.EqualFold(k, "Content-Security-Policy") {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// requested reports whether the page loaded a resource at url.
func requested(tb *tab, url string) bool {
	for _, raw := range tb.eventsOf("Network.responseReceived") {
		var p struct {
			Response struct {
				URL    string `json:"url"`
				Status int    `json:"status"`
			} `json:"response"`
		}
		_ = json.Unmarshal(raw, &p)
		if p.Response.URL == url && p.Response.Status == 200 {
			return true
		}
	}
	return false
}

// strictCSP checks a page CSP forbids inline script.
func strictCSP(t *testing.T, csp string) {
	t.Helper()
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
		!strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP is not strict: %s", csp)
	}
}
