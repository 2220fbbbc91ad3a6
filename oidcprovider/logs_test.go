package oidcprovider_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestNoSecretsInLogs runs flows that succeed and fail (wrong secret,
// replayed code, reused refresh token, revocation, logout) and checks that
// no code, token, verifier, client secret or binding cookie reaches our
// logger or zitadel's (slog.Default, captured in TestMain).
func TestNoSecretsInLogs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		var secrets []string
		r := e.confRP("openid", "email", "offline_access")

		f := r.login(t)
		tok, _ := f.tokens(t)
		secrets = append(secrets, f.code, f.verifier, tok.AccessToken, tok.RefreshToken, tok.Extra("id_token").(string), e.confSecret)
		for _, c := range f.browser.c.Jar.Cookies(mustURL(t, e.issuer+"/authorize")) {
			secrets = append(secrets, c.Value)
		}
		_, _ = f.exchange(t) // replay
		status, body := e.refresh(t, e.conf, e.confSecret, tok.RefreshToken)
		if status == http.StatusOK {
			t.Fatal("refresh after replay")
		}
		_ = body

		f2 := r.login(t)
		tok2, _ := f2.tokens(t)
		secrets = append(secrets, f2.code, tok2.AccessToken, tok2.RefreshToken)
		_, body = e.refresh(t, e.conf, e.confSecret, tok2.RefreshToken)
		if rt, ok := body["refresh_token"].(string); ok {
			secrets = append(secrets, rt, body["access_token"].(string))
		}
		e.refresh(t, e.conf, e.confSecret, tok2.RefreshToken) // reuse
		e.form(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {f2.code}}, e.conf.ID, "ssob_cs_wrong-secret-value")
		secrets = append(secrets, "ssob_cs_wrong-secret-value")
		e.form(t, "/revoke", url.Values{"token": {tok2.RefreshToken}}, e.conf.ID, e.confSecret)
		e.introspect(t, tok2.AccessToken)
		newBrowser(t).get(t, e.issuer+"/end_session?"+url.Values{"id_token_hint": {tok2.Extra("id_token").(string)}}.Encode())

		ours, theirs := e.logs.String(), zitadelLog.String()
		if !strings.Contains(ours, "authorization code replayed") {
			t.Fatal("the logger captured nothing useful; is it wired?")
		}
		for _, s := range secrets {
			if s == "" {
				continue
			}
			for name, log := range map[string]string{"our log": ours, "zitadel's log": theirs} {
				if strings.Contains(log, s) {
					t.Errorf("%s contains a secret (%.12s…)", name, s)
				}
			}
		}
	})
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	check(t, err, "url")
	return u
}

// TestSAMLRequestExpiry: a response after the AuthnRequest's expiry is
// refused even while the login lives.
func TestSAMLRequestExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		f := e.confRP().authorize(t)
		check(t, e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-exp", e.clock.Now().Add(time.Minute)), "StartSAML")
		e.clock.Advance(2 * time.Minute)
		if _, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-exp"); !errors.Is(err, oidcprovider.ErrSAMLRequestExpired) {
			t.Fatalf("late response: %v", err)
		}
		// The user may start over on the hosted page.
		check(t, e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-exp2", e.clock.Now().Add(time.Minute)), "StartSAML again")
		if _, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-exp"); !errors.Is(err, oidcprovider.ErrSAMLRequestUnknown) {
			t.Fatalf("response to the replaced request: %v", err)
		}
		_, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-exp2")
		check(t, err, "response to the new request")
	})
}
