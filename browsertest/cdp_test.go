package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file is a small Chrome DevTools Protocol client. Chromium is started
// with --remote-debugging-pipe: the protocol's JSON messages, each ended by
// a NUL byte, go to the browser on file descriptor 3 and come back on 4.
// There is no debugging port for anything else on the machine to reach,
// and nothing beyond the standard library.

// chromiumEnv names a Chrome or Chromium binary to use instead of the one
// on PATH.
const chromiumEnv = "SSOBROKER_CHROMIUM"

// chromiumPath finds the browser or fails the test, naming what to install:
// a missing browser must not turn the suite green.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium on PATH: the browser tests need it. Install it with `apt-get install -y chromium` " +
		"(Debian/Ubuntu package chromium; chromium-driver is not needed), or set " + chromiumEnv + " to a Chrome or Chromium binary")
	return ""
}

// chrome is one headless Chromium process.
type chrome struct {
	cmd    *exec.Cmd
	toIn   *os.File // our end of fd 3
	output *syncBuffer

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	tabs    map[string]*tab // by session id
	readErr error
	eof     chan struct{} // closed when the browser's pipe closes
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

func (e *cdpError) Error() string {
	return fmt.Sprintf("cdp error %d: %s %s", e.Code, e.Message, e.Data)
}

// startChrome starts a headless Chromium with a fresh profile; it is
// stopped (with every process it started) at cleanup.
func startChrome(t *testing.T) *chrome {
	t.Helper()
	bin := chromiumPath(t)
	profile := t.TempDir() // removed after the browser is gone (cleanups run in reverse)
	toR, toW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
		"--user-data-dir=" + profile, "--remote-debugging-pipe",
		"--no-default-browser-check", "--disable-extensions", "--disable-default-apps",
		"--disable-crash-reporter", "--disable-breakpad", "--mute-audio", "--hide-scrollbars",
		"--password-store=basic", "--use-mock-keychain", "--force-color-profile=srgb",
		"--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
		// Only loopback: no proxy from the environment, and no name is ever
		// resolved (the tests use IP literals).
		"--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2",
		"about:blank",
	}
	c := &chrome{output: &syncBuffer{}, pending: map[int64]chan cdpMessage{}, tabs: map[string]*tab{}, eof: make(chan struct{}), toIn: toW}
	c.cmd = exec.Command(bin, args...)
	c.cmd.ExtraFiles = []*os.File{toR, fromW} // fd 3, fd 4
	c.cmd.Stdout, c.cmd.Stderr = c.output, c.output
	// Its own process group, so cleanup can stop the renderers and helpers
	// it forks, by that group's id and nothing else.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	toR.Close()
	fromW.Close()
	go c.read(fromR)
	t.Cleanup(func() { c.stop(t) })

	var v struct {
		Product string `json:"product"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.call(ctx, "", "Browser.getVersion", nil, &v); err != nil {
		t.Fatalf("Chromium (%s) did not answer on the DevTools pipe: %v\n%s", bin, err, c.output.String())
	}
	t.Logf("browser: %s", v.Product)
	return c
}

func (c *chrome) read(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		b, err := br.ReadBytes(0)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			close(c.eof)
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(b[:len(b)-1], &m); err != nil {
			continue
		}
		c.mu.Lock()
		if m.ID != 0 {
			if ch, ok := c.pending[m.ID]; ok {
				ch <- m
				delete(c.pending, m.ID)
			}
		} else if tb, ok := c.tabs[m.SessionID]; ok && m.Method != "" {
			tb.record(m)
		}
		c.mu.Unlock()
	}
}

// call sends one command (to the browser when session is empty) and
// decodes its result into out (when not nil).
func (c *chrome) call(ctx context.Context, session, method string, params, out any) error {
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	ch := make(chan cdpMessage, 1)
	c.mu.Lock()
	if c.readErr != nil {
		c.mu.Unlock()
		return fmt.Errorf("%s: browser gone: %w", method, c.readErr)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	msg, _ := json.Marshal(cdpMessage{ID: id, SessionID: session, Method: method, Params: p})
	_, err = c.toIn.Write(append(msg, 0))
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: the browser closed the pipe", method)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %w", method, m.Error)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// stop closes the browser politely, then kills what is left of its
// process group before reaping it (so the group id cannot have been reused).
func (c *chrome) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = c.call(ctx, "", "Browser.close", nil, nil)
	cancel()
	select {
	case <-c.eof:
	case <-time.After(5 * time.Second):
		t.Logf("Chromium did not close within 5s; killing it")
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	_ = c.cmd.Wait()
	c.toIn.Close()
	if t.Failed() {
		t.Logf("Chromium output:\n%s", truncate(c.output.String(), 4000))
	}
}

// tab is one page in its own browser context (its own cookie jar), with
// the events the page produced.
type tab struct {
	t       *testing.T
	c       *chrome
	session string
	target  string
	bctx    string
	mu      sync.Mutex
	events  []cdpMessage
}

// cspProbe runs in every document before the page's own scripts (DevTools
// injects it; the page's CSP does not apply to it) and turns CSP violation
// events into console errors, which the tab records.
const cspProbe = `document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.documentURI);
});`

// newTab opens a blank page in a fresh browser context and closes both at
// the end of the (sub)test.
func (c *chrome) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var bc struct {
		ID string `json:"browserContextId"`
	}
	if err := c.call(ctx, "", "Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, &bc); err != nil {
		t.Fatal(err)
	}
	var tg struct {
		ID string `json:"targetId"`
	}
	if err := c.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.ID}, &tg); err != nil {
		t.Fatal(err)
	}
	var at struct {
		Session string `json:"sessionId"`
	}
	if err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tg.ID, "flatten": true}, &at); err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, c: c, session: at.Session, target: tg.ID, bctx: bc.ID}
	c.mu.Lock()
	c.tabs[at.Session] = tb
	c.mu.Unlock()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": tg.ID}, nil)
		_ = c.call(ctx, "", "Target.disposeBrowserContext", map[string]any{"browserContextId": bc.ID}, nil)
		c.mu.Lock()
		delete(c.tabs, at.Session)
		c.mu.Unlock()
		if t.Failed() {
			t.Logf("console and log entries of the tab:\n%s", strings.Join(tb.consoleMessages(), "\n"))
		}
	})
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable", "Audits.enable"} {
		tb.do(m, nil, nil)
	}
	tb.do("Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": cspProbe}, nil)
	// Behave like the focused window a user types into (autofocus,
	// :focus-visible), although headless windows have no OS focus.
	tb.do("Emulation.setFocusEmulationEnabled", map[string]any{"enabled": true}, nil)
	tb.viewport(1280, 800, false)
	return tb
}

func (tb *tab) record(m cdpMessage) {
	tb.mu.Lock()
	tb.events = append(tb.events, m)
	tb.mu.Unlock()
}

// eventsOf returns the recorded events of one method, oldest first.
func (tb *tab) eventsOf(method string) []json.RawMessage {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []json.RawMessage
	for _, m := range tb.events {
		if m.Method == method {
			out = append(out, m.Params)
		}
	}
	return out
}

// consoleMessages lists console calls, uncaught exceptions, browser log
// entries (CSP reports land here) and CSP issues, as text.
func (tb *tab) consoleMessages() []string {
	var out []string
	tb.mu.Lock()
	events := append([]cdpMessage(nil), tb.events...)
	tb.mu.Unlock()
	for _, m := range events {
		switch m.Method {
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string `json:"type"`
				Args []struct {
					Value       any    `json:"value"`
					Description string `json:"description"`
				} `json:"args"`
			}
			_ = json.Unmarshal(m.Params, &p)
			var parts []string
			for _, a := range p.Args {
				if a.Value != nil {
					parts = append(parts, fmt.Sprint(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			out = append(out, "console."+p.Type+": "+strings.Join(parts, " "))
		case "Runtime.exceptionThrown":
			out = append(out, "exception: "+string(m.Params))
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Source string `json:"source"`
					Level  string `json:"level"`
					Text   string `json:"text"`
					URL    string `json:"url"`
				} `json:"entry"`
			}
			_ = json.Unmarshal(m.Params, &p)
			out = append(out, fmt.Sprintf("log %s/%s: %s (%s)", p.Entry.Source, p.Entry.Level, p.Entry.Text, p.Entry.URL))
		case "Audits.issueAdded":
			out = append(out, "issue: "+string(m.Params))
		}
	}
	return out
}

// assertNoConsoleProblems fails on any CSP violation (reported by the
// probe, the browser log or a CSP issue), console error or warning, or
// uncaught exception. Network log entries are left out: error pages come
// with 4xx statuses on purpose. Other DevTools issues are advice, logged.
func (tb *tab) assertNoConsoleProblems() {
	tb.t.Helper()
	for _, m := range tb.consoleMessages() {
		switch {
		case strings.HasPrefix(m, "console.log"), strings.HasPrefix(m, "console.info"), strings.HasPrefix(m, "console.debug"),
			strings.HasPrefix(m, "log network/"), strings.HasPrefix(m, "log ") && (strings.Contains(m, "/verbose:") || strings.Contains(m, "/info:")):
		case strings.HasPrefix(m, "issue: ") && !strings.Contains(m, "ContentSecurityPolicy"):
			tb.t.Logf("DevTools issue (advice): %s", m)
		default:
			tb.t.Errorf("browser reported: %s", m)
		}
	}
}

// do calls a method on this page, failing the test on error.
func (tb *tab) do(method string, params, out any) {
	tb.t.Helper()
	if err := tb.try(method, params, out); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) try(method string, params, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return tb.c.call(ctx, tb.session, method, params, out)
}

// evalErr evaluates a JavaScript expression in the page (awaiting a
// promise) and decodes its JSON value into out.
func (tb *tab) evalErr(expr string, out any) error {
	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := tb.try("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("javascript: %s %s", res.Exception.Text, res.Exception.Exception.Description)
	}
	if out == nil {
		return nil
	}
	if len(res.Result.Value) == 0 {
		return fmt.Errorf("javascript: %q returned %s, not a value", truncate(expr, 80), res.Result.Type)
	}
	return json.Unmarshal(res.Result.Value, out)
}

func (tb *tab) eval(expr string, out any) {
	tb.t.Helper()
	if err := tb.evalErr(expr, out); err != nil {
		tb.t.Fatalf("%v\nin %s\n%s", err, truncate(expr, 200), tb.describe())
	}
}

func (tb *tab) evalString(expr string) string {
	tb.t.Helper()
	var s string
	tb.eval(expr, &s)
	return s
}

func (tb *tab) evalBool(expr string) bool {
	tb.t.Helper()
	var b bool
	tb.eval(expr, &b)
	return b
}

// describe says where the page is, for failure messages.
func (tb *tab) describe() string {
	var d struct {
		URL  string `json:"url"`
		Text string `json:"text"`
	}
	if err := tb.evalErr(`({url: location.href, text: document.body ? document.body.innerText : ""})`, &d); err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return fmt.Sprintf("page %s:\n%s", d.URL, truncate(d.Text, 1500))
}

// waitFor polls a boolean expression until it holds. Errors while a
// navigation replaces the document count as "not yet".
func (tb *tab) waitFor(what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ok bool
		if err := tb.evalErr(expr, &ok); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("timed out waiting for %s (%s)\n%s", what, expr, tb.describe())
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// navigation runs action (a click, a key press, a navigation) and waits
// until a new document has replaced the current one and finished loading,
// at a URL starting with prefix.
func (tb *tab) navigation(prefix string, action func()) {
	tb.t.Helper()
	tb.eval(`window.__browsertestOld = true`, nil)
	action()
	js, _ := json.Marshal(prefix)
	tb.waitFor("a new page at "+prefix, fmt.Sprintf(`window.__browsertestOld !== true && document.readyState === "complete" && location.href.startsWith(%s)`, js))
}

// navigate opens url and waits for the page it ends at (after redirects),
// which starts with wantPrefix, or with url when wantPrefix is empty.
func (tb *tab) navigate(url string, wantPrefix ...string) {
	tb.t.Helper()
	prefix := url
	if len(wantPrefix) > 0 {
		prefix = wantPrefix[0]
	}
	var res struct {
		ErrorText string `json:"errorText"`
	}
	tb.navigation(prefix, func() { tb.do("Page.navigate", map[string]any{"url": url}, &res) })
	if res.ErrorText != "" {
		tb.t.Fatalf("navigating to %s: %s", url, res.ErrorText)
	}
}

var keys = map[string]struct {
	code string
	vk   int
	text string
}{
	"Tab":   {"Tab", 9, ""},
	"Enter": {"Enter", 13, "\r"},
}

// Modifier bits of Input.dispatchKeyEvent.
const modShift = 8

// press sends a real key press through the browser's input pipeline (focus
// navigation, implicit form submission), not a synthetic DOM event.
func (tb *tab) press(key string, modifiers int) {
	tb.t.Helper()
	k, ok := keys[key]
	if !ok {
		tb.t.Fatalf("unknown key %q", key)
	}
	down := map[string]any{"type": "rawKeyDown", "key": key, "code": k.code, "windowsVirtualKeyCode": k.vk, "nativeVirtualKeyCode": k.vk, "modifiers": modifiers}
	if k.text != "" {
		down["type"], down["text"], down["unmodifiedText"] = "keyDown", k.text, k.text
	}
	tb.do("Input.dispatchKeyEvent", down, nil)
	tb.do("Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": key, "code": k.code, "windowsVirtualKeyCode": k.vk, "nativeVirtualKeyCode": k.vk, "modifiers": modifiers}, nil)
}

// typeText types into the focused element, as an input method would.
func (tb *tab) typeText(s string) {
	tb.t.Helper()
	tb.do("Input.insertText", map[string]any{"text": s}, nil)
}

// click clicks the middle of the element matching selector with the mouse,
// found through the DOM domain so that it also works with JavaScript off.
func (tb *tab) click(selector string) {
	tb.t.Helper()
	var doc struct {
		Root struct {
			NodeID int `json:"nodeId"`
		} `json:"root"`
	}
	tb.do("DOM.getDocument", map[string]any{"depth": 0}, &doc)
	var q struct {
		NodeID int `json:"nodeId"`
	}
	tb.do("DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": selector}, &q)
	if q.NodeID == 0 {
		tb.t.Fatalf("no element matches %s\n%s", selector, tb.describe())
	}
	tb.do("DOM.scrollIntoViewIfNeeded", map[string]any{"nodeId": q.NodeID}, nil)
	var box struct {
		Model struct {
			Content []float64 `json:"content"`
		} `json:"model"`
	}
	tb.do("DOM.getBoxModel", map[string]any{"nodeId": q.NodeID}, &box)
	c := box.Model.Content
	if len(c) != 8 {
		tb.t.Fatalf("%s has no box", selector)
	}
	x, y := (c[0]+c[4])/2, (c[1]+c[5])/2
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		tb.do("Input.dispatchMouseEvent", map[string]any{"type": typ, "x": x, "y": y, "button": "left", "clickCount": 1}, nil)
	}
}

// viewport sets the layout size; mobile turns on the phone behaviour
// (meta viewport, overlay scrollbars, touch-sized defaults).
func (tb *tab) viewport(width, height int, mobile bool) {
	tb.t.Helper()
	scale := 1
	if mobile {
		scale = 2
	}
	tb.do("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}, nil)
	tb.do("Emulation.setTouchEmulationEnabled", map[string]any{"enabled": mobile}, nil)
}

// colorScheme emulates prefers-color-scheme.
func (tb *tab) colorScheme(scheme string) {
	tb.t.Helper()
	tb.do("Emulation.setEmulatedMedia", map[string]any{"features": []map[string]string{{"name": "prefers-color-scheme", "value": scheme}}}, nil)
}

// javascript turns the page's scripts on or off (DevTools evaluation keeps
// working either way).
func (tb *tab) javascript(enabled bool) {
	tb.t.Helper()
	tb.do("Emulation.setScriptExecutionDisabled", map[string]any{"value": !enabled}, nil)
}

// screenshot saves the whole page as a PNG.
func (tb *tab) screenshot(path string) {
	tb.t.Helper()
	var m struct {
		Content struct {
			Width  float64 `json:"width"`
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
		Viewport struct {
			Width  float64 `json:"clientWidth"`
			Height float64 `json:"clientHeight"`
		} `json:"cssLayoutViewport"`
	}
	tb.do("Page.getLayoutMetrics", nil, &m)
	h := max(m.Content.Height, m.Viewport.Height)
	var shot struct {
		Data string `json:"data"`
	}
	tb.do("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true, "optimizeForSpeed": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": m.Viewport.Width, "height": h, "scale": 1}}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// cookie is a cookie as the browser stores it.
type cookie struct {
	Name     string `json:"name"`
	Domain   string `json:"domain"`
	Path     string `json:"path"`
	HTTPOnly bool   `json:"httpOnly"`
	Secure   bool   `json:"secure"`
	SameSite string `json:"sameSite"`
}

// cookies returns the cookies the browser would send to urls.
func (tb *tab) cookies(urls ...string) []cookie {
	tb.t.Helper()
	var res struct {
		Cookies []cookie `json:"cookies"`
	}
	tb.do("Network.getCookies", map[string]any{"urls": urls}, &res)
	return res.Cookies
}

// cookieReport is what the browser says about the cookies of one request:
// those it attached and those it held back, with the reasons.
type cookieReport struct {
	URL     string
	Sent    []string
	Blocked map[string][]string
}

// requestCookies reports, for every request whose URL contains part, the
// cookies the browser attached and those it held back. A redirect keeps the
// request id, so the n-th request with an id pairs with its n-th ExtraInfo.
func (tb *tab) requestCookies(part string) []cookieReport {
	type hop struct{ id, url string }
	var hops []hop
	for _, raw := range tb.eventsOf("Network.requestWillBeSent") {
		var p struct {
			ID      string `json:"requestId"`
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		_ = json.Unmarshal(raw, &p)
		hops = append(hops, hop{p.ID, p.Request.URL})
	}
	extras := map[string][]json.RawMessage{}
	for _, raw := range tb.eventsOf("Network.requestWillBeSentExtraInfo") {
		var p struct {
			ID string `json:"requestId"`
		}
		_ = json.Unmarshal(raw, &p)
		extras[p.ID] = append(extras[p.ID], raw)
	}
	seen := map[string]int{}
	var out []cookieReport
	for _, h := range hops {
		n := seen[h.id]
		seen[h.id]++
		if !strings.Contains(h.url, part) {
			continue
		}
		rep := cookieReport{URL: h.url, Blocked: map[string][]string{}}
		if n < len(extras[h.id]) {
			var p struct {
				Cookies []struct {
					Blocked []string `json:"blockedReasons"`
					Cookie  struct {
						Name string `json:"name"`
					} `json:"cookie"`
				} `json:"associatedCookies"`
			}
			_ = json.Unmarshal(extras[h.id][n], &p)
			for _, c := range p.Cookies {
				if len(c.Blocked) == 0 {
					rep.Sent = append(rep.Sent, c.Cookie.Name)
				} else {
					rep.Blocked[c.Cookie.Name] = c.Blocked
				}
			}
		}
		out = append(out, rep)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
