package faulttest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestGracefulShutdownDrains sends SIGTERM while two requests are in
// flight inside the broker: a login's SAML response posted to the ACS and
// an admin write. Each is held deterministically: it is sent with
// "Expect: 100-continue", and half its body goes out only once the
// handler has asked for the body (the "100 Continue"), so the handler is
// provably running when the signal arrives. The broker must then refuse
// new connections, close idle ones, finish both requests successfully and
// exit 0 well within SSOBROKER_SHUTDOWN_TIMEOUT; what they wrote must be
// there after a restart. A second case holds a request past the timeout:
// the process must still exit when the timeout expires.
func TestGracefulShutdownDrains(t *testing.T) {
	t.Run("in-flight requests complete", func(t *testing.T) {
		const drain = 10 * time.Second
		cfg := newServeConfig(t, storetest.SQLiteURL(t))
		cfg.extra = []string{"SSOBROKER_SHUTDOWN_TIMEOUT=" + drain.String()}
		p := startServe(t, "serve", cfg)
		s := setupSite(t, cfg.issuer, newTestIdP(t))

		// A login up to the moment the browser posts the SAML response.
		b := newBrowser("drain@acme.com")
		defer b.close()
		l := s.newLogin(b)
		acs, idpPage, err := b.follow(t.Context(), step{method: http.MethodGet, url: l.authURL()}, func(u *url.URL) bool {
			return strings.HasSuffix(u.Path, "/acs")
		})
		if err != nil || acs == nil {
			t.Fatalf("login to the IdP step: %v (%d %.200s)", err, idpPage.Status, idpPage.Body)
		}
		forms, err := idpPage.forms()
		if err != nil || len(forms) == 0 {
			t.Fatalf("IdP page has no form: %v", err)
		}
		acsReq := holdRequest(t, cfg.listen, "POST", acs.Path, cfg.listen, "application/x-www-form-urlencoded", "", []byte(forms[0].fields.Encode()))
		adminReq := holdRequest(t, cfg.listen, "POST", "/api/v1/tenants", cfg.listen, "application/json", adminToken,
			[]byte(`{"name": "Created while draining", "domains": ["draining.example.com"]}`))

		// An idle keep-alive connection, which shutdown closes.
		idle, err := net.Dial("tcp", cfg.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", cfg.listen)
		idleR := bufio.NewReader(idle)
		if res, err := http.ReadResponse(idleR, nil); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("keep-alive /healthz: %v", err)
		} else {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}

		sigAt := time.Now()
		p.signal(syscall.SIGTERM)
		if err := waitFor(func() bool { _, ok := p.stderr.seenAt(drainingLine); return ok }, 5*time.Second); err != nil {
			t.Fatalf("no %q log line after SIGTERM: %v", drainingLine, err)
		}
		// New connections are refused once the listener is closed.
		if err := waitFor(func() bool {
			c, err := net.DialTimeout("tcp", cfg.listen, time.Second)
			if err == nil {
				c.Close()
				return false
			}
			return isConnRefused(err)
		}, 2*time.Second); err != nil {
			t.Errorf("new connections still accepted during shutdown: %v", err)
		}
		// The idle keep-alive connection is closed, not left to time out.
		_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := idleR.ReadByte(); err != io.EOF {
			t.Errorf("idle keep-alive connection during shutdown: read %v, want EOF", err)
		}
		time.Sleep(300 * time.Millisecond)
		if !p.running() {
			t.Fatalf("exited (%v) with two requests in flight", p.exitErr)
		}

		res := acsReq.finish(t)
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "/authorize/callback") {
			t.Errorf("in-flight ACS request: %d Location %q %.300s, want 303 to the callback", res.StatusCode, loc, res.body)
		}
		callback := res.Header.Get("Location")
		res = adminReq.finish(t)
		if res.StatusCode != http.StatusCreated {
			t.Errorf("in-flight admin request: %d %.300s, want 201", res.StatusCode, res.body)
		}
		code, _ := p.wait(drain + 5*time.Second)
		took := p.exited.Sub(sigAt)
		t.Logf("exited %d %s after SIGTERM (the test held its two requests for about 300ms of that)", code, took.Round(time.Millisecond))
		if code != 0 {
			t.Errorf("exit code %d after a clean drain, want 0", code)
		}
		if took > drain {
			t.Errorf("exit took %s, more than SSOBROKER_SHUTDOWN_TIMEOUT=%s", took, drain)
		}
		if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
			t.Errorf("no \"stopped\" log line after the drain")
		}

		// What the drained requests did is durable: the tenant exists and
		// the login finishes on the restarted broker.
		startServe(t, "serve after SIGTERM", cfg)
		var tenants struct {
			Data []struct {
				Name string `json:"name"`
			} `json:"data"`
		}
		s.admin.must(t, "GET", "/api/v1/tenants?limit=200", nil, http.StatusOK, &tenants)
		found := false
		for _, tn := range tenants.Data {
			found = found || tn.Name == "Created while draining"
		}
		if !found {
			t.Error("the tenant created while draining is missing after the restart")
		}
		if callback != "" {
			u, _ := acs.Parse(callback)
			if _, err := l.continueFrom(t.Context(), step{method: http.MethodGet, url: u.String()}); err != nil {
				t.Errorf("finishing the login whose ACS request was drained: %v", err)
			}
		}
	})

	t.Run("drain is bounded by the timeout", func(t *testing.T) {
		const drain = 2 * time.Second
		cfg := newServeConfig(t, storetest.SQLiteURL(t))
		cfg.extra = []string{"SSOBROKER_SHUTDOWN_TIMEOUT=" + drain.String()}
		p := startServe(t, "serve", cfg)
		// Never finished.
		holdRequest(t, cfg.listen, "POST", "/api/v1/tenants", cfg.listen, "application/json", adminToken, []byte(`{"name": "never", "domains": []}`))
		sigAt := time.Now()
		p.signal(syscall.SIGTERM)
		code, _ := p.wait(drain + 5*time.Second)
		took := p.exited.Sub(sigAt)
		t.Logf("with a request held forever: exited %d %s after SIGTERM (timeout %s)", code, took.Round(time.Millisecond), drain)
		if took < drain-100*time.Millisecond {
			t.Errorf("exited after %s, before the %s drain timeout, with a request in flight", took, drain)
		}
		if took > drain+3*time.Second {
			t.Errorf("exited %s after SIGTERM, far beyond SSOBROKER_SHUTDOWN_TIMEOUT=%s", took, drain)
		}
		// serveHTTP returns the Shutdown error: exit 1, and the log says so.
		if code != 1 || !strings.Contains(p.stderr.String(), "shutdown: context deadline exceeded") {
			t.Errorf("exit code %d, want 1 with \"shutdown: context deadline exceeded\" when the drain times out", code)
		}
	})
}

// heldRequest is an HTTP/1.1 request on its own connection whose handler
// is running and blocked reading the second half of the body.
type heldRequest struct {
	conn net.Conn
	r    *bufio.Reader
	rest []byte
}

type heldResponse struct {
	*http.Response
	body string
}

// holdRequest sends the headers with Expect: 100-continue, waits for the
// handler to ask for the body, then sends half of it.
func holdRequest(t *testing.T, addr, method, path, host, contentType, bearer string, body []byte) *heldRequest {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialling %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", method, path, host, contentType, len(body))
	if bearer != "" {
		fmt.Fprintf(&hdr, "Authorization: Bearer %s\r\n", bearer)
	}
	hdr.WriteString("\r\n")
	if _, err := io.WriteString(conn, hdr.String()); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("%s %s: waiting for 100 Continue: %v", method, path, err)
	}
	if res.StatusCode != http.StatusContinue {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s %s: got %d before sending the body, want 100 Continue: %.300s", method, path, res.StatusCode, b)
	}
	half := len(body) / 2
	if _, err := conn.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	return &heldRequest{conn: conn, r: r, rest: body[half:]}
}

// finish sends the rest of the body and reads the response.
func (h *heldRequest) finish(t *testing.T) heldResponse {
	t.Helper()
	if _, err := h.conn.Write(h.rest); err != nil {
		t.Fatalf("sending the rest of a held request: %v", err)
	}
	_ = h.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(h.r, nil)
	if err != nil {
		t.Fatalf("reading the response to a held request: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return heldResponse{Response: res, body: string(b)}
}

// waitFor polls cond every 10 ms for up to d.
func waitFor(cond func() bool, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not within %s", d)
}
