package oidcprovider_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store/storetest"
)

func (e *env) jwksKids(t *testing.T) []string {
	t.Helper()
	_, jwks, _ := e.getJSON(t, "/keys", nil)
	var kids []string
	for _, k := range jwks["keys"].([]any) {
		kids = append(kids, k.(map[string]any)["kid"].(string))
	}
	return kids
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	check(t, err, "parse ID token")
	return jws.Signatures[0].Header.KeyID
}

// TestSigningKeyRotation moves the clock through a rotation: the next key
// is published a day before it signs, and the old one stays published
// until every ID token it signed has expired.
func TestSigningKeyRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		r := e.confRP()
		idToken := func(t *testing.T) string {
			tok, _ := r.login(t).tokens(t)
			return tok.Extra("id_token").(string)
		}

		first := e.jwksKids(t)
		if len(first) != 1 {
			t.Fatalf("JWKS at start: %v", first)
		}
		old := idToken(t)
		if kidOf(t, old) != first[0] {
			t.Fatal("ID token not signed by the published key")
		}

		// A day (and a bit) before the rotation: the next key is published
		// but does not sign yet.
		e.clock.Advance(29*24*time.Hour + 2*time.Minute)
		both := e.jwksKids(t)
		if len(both) != 2 || both[0] != first[0] {
			t.Fatalf("JWKS before the switch: %v", both)
		}
		if got := kidOf(t, idToken(t)); got != first[0] {
			t.Fatalf("the next key signs before its time (kid %s)", got)
		}

		// After the switch: the new key signs; the old one still verifies.
		e.clock.Advance(24 * time.Hour)
		fresh := idToken(t)
		if kidOf(t, fresh) != both[1] {
			t.Fatalf("after the switch the ID token is signed by %s, want %s", kidOf(t, fresh), both[1])
		}
		r2 := e.confRP() // a relying party that fetches the JWKS now
		if _, err := r2.verifier.Verify(r2.ctx, old); err != nil {
			t.Fatalf("a token of the old key no longer verifies during the overlap: %v", err)
		}
		if kids := e.jwksKids(t); !slices.Equal(kids, both) {
			t.Fatalf("JWKS during the overlap: %v, want %v", kids, both)
		}

		// Once every token of the old key has expired, it is withdrawn.
		e.clock.Advance(25 * time.Hour)
		if kids := e.jwksKids(t); !slices.Equal(kids, both[1:]) {
			t.Fatalf("JWKS after the overlap: %v, want %v", kids, both[1:])
		}
		n, err := e.p.DeleteExpired(context.Background())
		check(t, err, "GC")
		if n == 0 {
			t.Fatal("GC deleted nothing (the retired key at least)")
		}
	})
}

// TestES256 signs with P-256 when configured.
func TestES256(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, func(c *oidcprovider.Config) { c.SigningAlgorithm = "ES256" })
		tok, _ := e.confRP().login(t).tokens(t)
		raw := tok.Extra("id_token").(string)
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		check(t, err, "ES256 ID token")
		if jws.Signatures[0].Header.Algorithm != "ES256" {
			t.Fatalf("alg %s", jws.Signatures[0].Header.Algorithm)
		}
		_, d, _ := e.getJSON(t, "/.well-known/openid-configuration", nil)
		if algs := d["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
			t.Fatalf("advertised algs %v", algs)
		}
	})
}

// replica starts a second provider on the same store and issuer, as
// another broker process behind the same load balancer.
func (e *env) replica(t *testing.T, opts ...envOption) (*oidcprovider.Provider, string) {
	t.Helper()
	cfg := oidcprovider.Config{Issuer: e.issuer, Clock: e.clock, Logger: slog.New(slog.NewTextHandler(e.logs, nil))}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := oidcprovider.New(context.Background(), cfg, e.st)
	check(t, err, "replica")
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// TestReplicas: two providers on one store share the signing keys and the
// key that encrypts codes and access tokens, so any step of a login can
// run on either.
func TestReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		p2, url2 := e.replica(t)
		r := e.confRP()

		f := r.authorize(t) // replica 1
		ctx := context.Background()
		check(t, p2.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-rep", e.clock.Now().Add(time.Minute)), "StartSAML on replica 2")
		_, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-rep") // ACS on replica 1
		check(t, err, "ACS on replica 1")
		cb, err := p2.CompleteLogin(ctx, f.loginID, e.ident, e.conn, e.clock.Now())
		check(t, err, "CompleteLogin on replica 2")
		// The callback URL names the shared issuer; play it on replica 2.
		f.callback(t, url2+cb[len(e.issuer):])
		tok, _ := f.tokens(t) // token endpoint of replica 1

		req, _ := http.NewRequest(http.MethodGet, url2+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		check(t, err, "userinfo on replica 2")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("replica 2 cannot read replica 1's access token: %d", resp.StatusCode)
		}
		if k1 := e.jwksKids(t); len(k1) != 1 {
			t.Fatalf("replicas created separate keys: %v", k1)
		}
	})
}

// TestConcurrentReplicaStart: replicas starting together on an empty
// store agree on one crypto key and one first signing key.
func TestConcurrentReplicaStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		u := b.URL(t)
		const n = 3
		provs := make([]*oidcprovider.Provider, n)
		errs := make([]error, n)
		done := make(chan struct{})
		start := make(chan struct{})
		for i := range n {
			st := storetest.OpenURL(t, u)
			go func() {
				defer func() { done <- struct{}{} }()
				<-start
				provs[i], errs[i] = oidcprovider.New(context.Background(), oidcprovider.Config{Issuer: "https://sso.example.com"}, st)
			}()
		}
		close(start)
		for range n {
			<-done
		}
		for i, err := range errs {
			check(t, err, "replica "+string(rune('0'+i)))
		}
		st := storetest.OpenURL(t, u)
		keys, err := st.SigningKeys(context.Background())
		check(t, err, "keys")
		if len(keys) != 1 {
			t.Fatalf("%d signing keys after a concurrent start, want 1", len(keys))
		}
	})
}
