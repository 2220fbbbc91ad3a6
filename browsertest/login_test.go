package browsertest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBrowserLogin signs in through the hosted page in headless Chromium,
// from the demo app to its callback, and checks what a user and the
// browser see on the way. The subtests share one broker and one browser;
// each has its own browser context (cookie jar) and runs in order.
func TestBrowserLogin(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	c := startChrome(t)

	// The detector behind assertNoConsoleProblems must see a violation,
	// also after a cross-site navigation (a new renderer process): a page
	// on the simulator's site with an inline script under script-src 'self'.
	t.Run("CSP violations are seen", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, `<!doctype html><title>inline</title><script>document.title = "ran"</script>`)
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		tb := c.newTab(t)
		tb.navigate(s.issuer + "/demo/")
		tb.navigate("http://" + ln.Addr().String() + "/")
		if tb.evalString(`document.title`) == "ran" {
			t.Fatal("the inline script ran despite the CSP")
		}
		// Reports arrive as separate tasks and events.
		var probe, browser bool
		for deadline := time.Now().Add(5 * time.Second); !(probe && browser) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, m := range tb.consoleMessages() {
				probe = probe || strings.HasPrefix(m, "console.error: CSP violation: script-src")
				browser = browser || strings.HasPrefix(m, "log ") && strings.Contains(m, "Content Security Policy")
			}
		}
		if !probe || !browser {
			t.Errorf("violation seen by the probe %v, in the browser log %v; messages:\n%s", probe, browser, strings.Join(tb.consoleMessages(), "\n"))
		}
	})

	t.Run("hosted page", func(t *testing.T) {
		tb := c.newTab(t)
		openHostedPage(tb, s)

		// The email field: labelled, focused, typed for email, reachable
		// by keyboard in the order email → Continue.
		var f struct {
			Type, Label, Autocomplete string
			Autofocus, Focused        bool
			LabelVisible              bool
			DocumentCookie            string
		}
		tb.eval(`(() => { const e = document.getElementById("email"); const l = e.labels[0]; const r = l && l.getBoundingClientRect();
		  const cs = l && getComputedStyle(l);
		  return {Type: e.type, Label: l ? l.textContent.trim() : "", Autocomplete: e.autocomplete, Autofocus: e.autofocus,
		    Focused: document.activeElement === e, DocumentCookie: document.cookie,
		    LabelVisible: !!l && r.width > 0 && r.height > 0 && cs.visibility === "visible" && cs.display !== "none" && +cs.opacity > 0}; })()`, &f)
		if f.Type != "email" || !f.Autofocus || !f.Focused || f.Label != "Work email" || !f.LabelVisible || f.Autocomplete != "username" {
			t.Errorf("email field: %+v; want type=email, autofocus and focused, a visible label \"Work email\", autocomplete=username", f)
		}
		boxes := axFind(tb, "textbox")
		if len(boxes) != 1 || boxes[0].Name.Value != "Work email" || boxes[0].prop("focused") != true {
			t.Errorf("accessibility tree textboxes: %+v; want one focused \"Work email\"", boxes)
		}
		tb.press("Tab", 0)
		if got := focused(tb); got != `button "Continue"` {
			t.Errorf("Tab from the email field focuses %s, want the Continue button", got)
		}
		if !tb.evalBool(`document.activeElement.matches(":focus-visible") && getComputedStyle(document.activeElement).outlineStyle === "solid" && parseFloat(getComputedStyle(document.activeElement).outlineWidth) >= 2`) {
			t.Errorf("the focused Continue button shows no focus ring")
		}
		tb.press("Tab", modShift)
		if got := focused(tb); got != "input#email" {
			t.Errorf("Shift+Tab from Continue focuses %s, want the email field", got)
		}

		// Cookies: HttpOnly and SameSite=Lax, none readable by script.
		if f.DocumentCookie != "" {
			t.Errorf("document.cookie = %q on the hosted page, want nothing readable", f.DocumentCookie)
		}
		cookies := tb.cookies(s.issuer+"/login", s.issuer+"/authorize/callback", s.issuer+"/demo/callback")
		names := map[string]bool{}
		for _, ck := range cookies {
			names[ck.Name] = true
			if !ck.HTTPOnly || ck.SameSite != "Lax" {
				t.Errorf("cookie %s: HttpOnly=%v SameSite=%q, want HttpOnly and Lax", ck.Name, ck.HTTPOnly, ck.SameSite)
			}
		}
		for _, want := range []string{"ssob_nonce", "ssob_authz", "ssob_demo"} {
			if !names[want] {
				t.Errorf("cookie %s missing; the browser holds %+v", want, cookies)
			}
		}

		// An address whose domain has no SSO: a plain message naming the
		// (normalized) domain, the typed address kept, the error tied to
		// the field and announced.
		tb.typeText("jane@Unknown-Corp.test")
		tb.navigation(s.issuer+"/login", func() { tb.press("Enter", 0) })
		var e struct {
			Alert, Role, Value, Described, Invalid, Title string
			Focused                                       bool
		}
		tb.eval(`(() => { const a = document.querySelector(".alert"); const e = document.getElementById("email");
		  return {Alert: a ? a.textContent.trim() : "", Role: a ? a.getAttribute("role") : "", Value: e.value,
		    Described: e.getAttribute("aria-describedby") || "", Invalid: e.getAttribute("aria-invalid") || "",
		    Focused: document.activeElement === e, Title: document.title}; })()`, &e)
		wantMsg := "Single sign-on is not set up for unknown-corp.test. Check the address, or ask your IT administrator."
		if e.Alert != wantMsg || e.Role != "alert" || e.Value != "jane@Unknown-Corp.test" || e.Invalid != "true" || !e.Focused {
			t.Errorf("after an unknown domain: %+v\nwant the message %q with role=alert, the address kept, aria-invalid, focus on the field", e, wantMsg)
		}
		if e.Described == "" || !tb.evalBool(`document.getElementById(document.getElementById("email").getAttribute("aria-describedby")) === document.querySelector(".alert")`) {
			t.Errorf("the email field's aria-describedby=%q does not point at the message", e.Described)
		}
		if !strings.HasPrefix(e.Title, "Error: ") {
			t.Errorf("title %q: want it to start with \"Error: \" so the failure is announced with the page", e.Title)
		}
		if boxes := axFind(tb, "textbox"); len(boxes) != 1 || boxes[0].Description.Value != wantMsg || boxes[0].prop("invalid") != "true" {
			t.Errorf("accessibility tree: %+v; want the textbox described by the message and invalid", boxes)
		}

		// A known domain: on to the simulator (another site), then the
		// simulator's SAML POST page submits itself to the ACS.
		submitEmail(tb, strings.ToUpper(demoUser[:1])+demoUser[1:], s.idp+"/simulator/sso")
		simulatorSignIn(tb, s, "ok", s.issuer+"/demo/callback")
		claims := signedInClaims(tb)
		if claims["email"] != demoUser {
			t.Errorf("email claim %v, want %s", claims["email"], demoUser)
		}
		if !requested(tb, s.idp+"/static/autosubmit.js") {
			t.Errorf("the SAML POST page did not load /static/autosubmit.js")
		}
		csps := cspHeaders(tb, s.idp+"/simulator/respond")
		if len(csps) == 0 {
			t.Errorf("no Content-Security-Policy on the simulator's SAML POST page")
		}
		for _, csp := range csps {
			strictCSP(t, csp)
			if !strings.Contains(csp, "form-action 'self' "+s.issuer) {
				t.Errorf("the SAML POST page's CSP does not allow posting to the ACS origin: %s", csp)
			}
		}
		tb.assertNoConsoleProblems()
	})

	t.Run("login_hint", func(t *testing.T) {
		tb := c.newTab(t)
		mark := s.mark()
		tb.navigate(s.issuer + "/demo/")
		tb.click("#login_hint")
		tb.typeText(demoUser)
		// The hosted page is skipped: straight to the IdP.
		tb.navigation(s.idp+"/simulator/sso", func() { tb.press("Enter", 0) })
		if r := s.oneRequest(t, mark, http.MethodGet, "/login"); r.Status != http.StatusSeeOther {
			t.Errorf("GET /login with a login_hint answered %d, want 303 to the IdP", r.Status)
		}
		simulatorSignIn(tb, s, "ok", s.issuer+"/demo/callback")
		if claims := signedInClaims(tb); claims["email"] != demoUser {
			t.Errorf("email claim %v, want %s", claims["email"], demoUser)
		}
		tb.assertNoConsoleProblems()
	})

	// The ACS is a cross-site POST from the IdP. The browser-binding cookie
	// (ssob_authz, SameSite=Lax, path /authorize) must still reach
	// /authorize/callback after the ACS's 303, and the demo app's cookie
	// its callback.
	t.Run("SameSite across sites", func(t *testing.T) {
		tb := c.newTab(t)
		mark := s.mark()
		tb.navigate(s.issuer+"/demo/login?login_hint="+url.QueryEscape(demoUser), s.idp+"/simulator/sso")
		simulatorSignIn(tb, s, "ok", s.issuer+"/demo/callback")
		signedInClaims(tb)

		acs := s.oneRequest(t, mark, http.MethodPost, "/saml/")
		cb := s.oneRequest(t, mark, http.MethodGet, "/authorize/callback")
		demo := s.oneRequest(t, mark, http.MethodGet, "/demo/callback")
		t.Logf("ACS POST: Sec-Fetch-Site=%s cookies=%v status=%d", acs.SecFetchSite, acs.Cookies, acs.Status)
		t.Logf("GET /authorize/callback: Sec-Fetch-Site=%s cookies=%v status=%d", cb.SecFetchSite, cb.Cookies, cb.Status)
		t.Logf("GET /demo/callback: Sec-Fetch-Site=%s cookies=%v status=%d", demo.SecFetchSite, demo.Cookies, demo.Status)
		// The POST really was cross-site: the browser says so, and held
		// back the Lax cookies that match /saml/.
		if acs.SecFetchSite != "cross-site" || contains(acs.Cookies, "ssob_nonce") || contains(acs.Cookies, "ssob_demo") {
			t.Errorf("ACS POST: Sec-Fetch-Site=%q cookies=%v; want a cross-site POST without the Lax cookies", acs.SecFetchSite, acs.Cookies)
		}
		var blocked []string
		for _, rep := range tb.requestCookies("/saml/") {
			t.Logf("browser on %s: sent %v, blocked %v", rep.URL, rep.Sent, rep.Blocked)
			blocked = append(blocked, rep.Blocked["ssob_nonce"]...)
		}
		if !contains(blocked, "SameSiteLax") && !contains(blocked, "SchemefulSameSiteLax") {
			t.Errorf("the browser did not report ssob_nonce blocked by SameSite=Lax on the ACS POST (reasons %v)", blocked)
		}
		// The top-level GETs after the 303 carry the Lax cookies.
		if !contains(cb.Cookies, "ssob_authz") || cb.Status != http.StatusFound || cb.SecFetchSite != "cross-site" {
			t.Errorf("callback: cookies=%v status=%d Sec-Fetch-Site=%q; want ssob_authz sent on the cross-site redirect chain and 302", cb.Cookies, cb.Status, cb.SecFetchSite)
		}
		if !contains(demo.Cookies, "ssob_demo") {
			t.Errorf("demo callback: cookies %v, want ssob_demo", demo.Cookies)
		}
		for _, rep := range tb.requestCookies("/authorize/callback") {
			t.Logf("browser on %s: sent %v, blocked %v", rep.URL, rep.Sent, rep.Blocked)
			if !contains(rep.Sent, "ssob_authz") {
				t.Errorf("the browser did not send ssob_authz to %s (blocked: %v)", rep.URL, rep.Blocked)
			}
		}
	})

	// A failed assertion (expired): the friendly error page with the
	// request's reference, and a "Try again" link that restarts the same
	// login and can finish it.
	t.Run("expired assertion, try again", func(t *testing.T) {
		tb := c.newTab(t)
		openHostedPage(tb, s)
		submitEmail(tb, demoUser, s.idp+"/simulator/sso")
		mark := s.mark()
		simulatorSignIn(tb, s, "expired", s.issuer+"/saml/")
		acs := s.oneRequest(t, mark, http.MethodPost, "/saml/")
		var p struct {
			H1, Lead, Reference, Retry, Back string
			Body                             string
		}
		tb.eval(`(() => { const q = s => document.querySelector(s);
		  return {H1: q("h1").textContent.trim(), Lead: q(".lead").textContent.trim(), Reference: (q(".footer code") || {}).textContent || "",
		    Retry: ([...document.querySelectorAll("a")].find(a => a.textContent.trim() === "Try again") || {}).href || "",
		    Back: ([...document.querySelectorAll("a")].find(a => a.textContent.startsWith("Back to")) || {}).href || "",
		    Body: document.body.innerText}; })()`, &p)
		if acs.Status != http.StatusBadRequest || p.H1 != "Your sign-in expired" || !strings.Contains(p.Body, "Reference "+acs.RequestID) || p.Reference != acs.RequestID {
			t.Errorf("error page (status %d): %+v; want \"Your sign-in expired\" and Reference %s", acs.Status, p, acs.RequestID)
		}
		if regexp.MustCompile(`(?i)saml|assertion|notonorafter|signature`).MatchString(p.Body) {
			t.Errorf("the error page shows internal detail:\n%s", p.Body)
		}
		if !strings.HasPrefix(p.Retry, s.issuer+"/login?id=") || !strings.HasPrefix(p.Back, s.issuer+"/login/cancel?id=") {
			t.Fatalf("Try again %q / Back %q links missing", p.Retry, p.Back)
		}
		tb.assertNoConsoleProblems()
		tb.navigation(s.issuer+"/login?id=", func() { tb.click(`a.button`) })
		if tb.evalString(`document.querySelector("h1").textContent`) != "Sign in to Demo app" {
			t.Fatalf("Try again did not lead to the hosted page\n%s", tb.describe())
		}
		submitEmail(tb, demoUser, s.idp+"/simulator/sso")
		simulatorSignIn(tb, s, "ok", s.issuer+"/demo/callback")
		signedInClaims(tb)
	})

	// The IdP refuses; the user goes back to the application, which gets
	// error=access_denied.
	t.Run("IdP error, back to the app", func(t *testing.T) {
		tb := c.newTab(t)
		tb.navigate(s.issuer+"/demo/login?login_hint="+url.QueryEscape(demoUser), s.idp+"/simulator/sso")
		simulatorSignIn(tb, s, "idp_error", s.issuer+"/saml/")
		if h1 := tb.evalString(`document.querySelector("h1").textContent`); h1 != "We could not sign you in" {
			t.Errorf("h1 %q", h1)
		}
		tb.navigation(s.issuer+"/demo/callback?", func() {
			tb.click(`a[href^="/login/cancel"]`)
		})
		if alert := tb.evalString(`document.querySelector(".alert").textContent`); !strings.Contains(alert, "access_denied") {
			t.Errorf("the app shows %q, want access_denied", alert)
		}
		tb.assertNoConsoleProblems()
	})

	// response_mode=form_post would need an auto-submitting page with
	// inline script, which our CSP forbids. The provider refuses it with an
	// OAuth error sent back to the (registered) redirect_uri as a plain
	// redirect: no page of ours renders and no script runs.
	t.Run("response_mode=form_post refused", func(t *testing.T) {
		var disc struct {
			Modes []string `json:"response_modes_supported"`
		}
		res, err := http.Get(s.issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&disc)
		res.Body.Close()
		if err != nil || len(disc.Modes) != 1 || disc.Modes[0] != "query" {
			t.Errorf("discovery response_modes_supported = %v (%v), want [query]", disc.Modes, err)
		}

		tb := c.newTab(t)
		mark := s.mark()
		verifier := "form-post-verifier-0123456789-0123456789-0123456789"
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{
			"client_id": {s.clientID}, "redirect_uri": {s.issuer + "/demo/callback"}, "response_type": {"code"},
			"scope": {"openid email"}, "state": {"st-form-post"}, "nonce": {"n-form-post"}, "response_mode": {"form_post"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		}
		tb.navigate(s.issuer+"/authorize?"+q.Encode(), s.issuer+"/demo/callback")
		got, _ := url.Parse(tb.evalString(`location.href`))
		if got.Path != "/demo/callback" || got.Query().Get("error") != "invalid_request" || got.Query().Get("state") != "st-form-post" || got.Query().Get("code") != "" {
			t.Errorf("the browser ended at %s; want the redirect_uri with error=invalid_request and the state", got)
		}
		if alert := tb.evalString(`document.querySelector(".alert").textContent`); !strings.Contains(alert, "response_mode=query") {
			t.Errorf("the app shows %q", alert)
		}
		auth := s.oneRequest(t, mark, http.MethodGet, "/authorize")
		if auth.Status != http.StatusFound || !strings.HasPrefix(auth.Location, s.issuer+"/demo/callback?") {
			t.Errorf("/authorize answered %d Location %q; want a 302 to the redirect_uri", auth.Status, auth.Location)
		}
		if rs := s.requestsSince(mark, http.MethodGet, "/login"); len(rs) != 0 {
			t.Errorf("a form_post request reached the hosted page: %+v", rs)
		}
		// The only document that rendered is the app's own callback page.
		for _, raw := range tb.eventsOf("Network.responseReceived") {
			var p struct {
				Type     string `json:"type"`
				Response struct {
					URL string `json:"url"`
				} `json:"response"`
			}
			_ = json.Unmarshal(raw, &p)
			if p.Type == "Document" && !strings.HasPrefix(p.Response.URL, s.issuer+"/demo/callback?") {
				t.Errorf("a document rendered at %s", p.Response.URL)
			}
		}
		tb.assertNoConsoleProblems()
	})

	// A choice that is no longer offered (connection turned off while the
	// picker was open): the picker again, saying so.
	t.Run("picker, stale choice", func(t *testing.T) {
		tb := c.newTab(t)
		openHostedPage(tb, s)
		submitEmail(tb, "bob@"+pickerDomain, s.issuer+"/login")
		tb.eval(`document.querySelector("button[name=connection]").value = "conn_gone"`, nil)
		tb.navigation(s.issuer+"/login", func() { tb.click("button[name=connection]") })
		var p struct{ H1, Alert, Role, Title string }
		tb.eval(`({H1: document.querySelector("h1").textContent, Alert: (document.querySelector(".alert") || {}).textContent || "",
		  Role: (document.querySelector(".alert") || {getAttribute: () => ""}).getAttribute("role"), Title: document.title})`, &p)
		if p.H1 != "Choose how to sign in" || p.Alert != "That sign-in option is no longer available. Choose another." || p.Role != "alert" || !strings.HasPrefix(p.Title, "Error: ") {
			t.Errorf("picker after a stale choice: %+v", p)
		}
	})

	// Without JavaScript every step still works: the hosted page and the
	// picker are plain form posts, and both SAML POST pages (AuthnRequest
	// to the IdP, response to the ACS) stay put with a visible Continue
	// button.
	t.Run("without JavaScript", func(t *testing.T) {
		tb := c.newTab(t)
		tb.javascript(false)
		openHostedPage(tb, s)
		submitEmail(tb, "bob@"+pickerDomain, s.issuer+"/login")
		if h1 := tb.evalString(`document.querySelector("h1").textContent`); h1 != "Choose how to sign in" {
			t.Fatalf("want the picker, got %q\n%s", h1, tb.describe())
		}
		id := tb.evalString(`[...document.querySelectorAll("button[name=connection]")].find(b => b.textContent.includes("POST binding")).value`)
		tb.navigation(s.issuer+"/login", func() { tb.click(`button[name=connection][value="` + id + `"]`) })
		continueByHand(tb, s.idp+"/simulator/sso")
		fill(tb, "#email", "bob@"+pickerDomain)
		tb.navigation(s.idp+"/simulator/respond", func() { tb.click(`form[action="/simulator/respond"] button[type=submit]`) })
		continueByHand(tb, s.issuer+"/demo/callback")
		signedInClaims(tb)
		tb.assertNoConsoleProblems()
	})
}

// continueByHand checks that the SAML POST page did not submit itself (no
// JavaScript) and shows a usable Continue button, then presses it.
func continueByHand(tb *tab, wantPrefix string) {
	tb.t.Helper()
	time.Sleep(300 * time.Millisecond) // time for a (wrongly) running script to act
	var p struct {
		H1     string
		Width  float64
		Height float64
	}
	tb.eval(`(() => { const b = document.querySelector("#autosubmit button[type=submit]"); const r = b ? b.getBoundingClientRect() : {width: 0, height: 0};
	  return {H1: document.querySelector("h1").textContent, Width: r.width, Height: r.height}; })()`, &p)
	if p.H1 != "Continue to sign in" || p.Width < 44 || p.Height < 44 {
		tb.t.Fatalf("SAML POST page without JavaScript: %+v; want it to wait with a visible Continue button\n%s", p, tb.describe())
	}
	tb.navigation(wantPrefix, func() { tb.click("#autosubmit button[type=submit]") })
}
