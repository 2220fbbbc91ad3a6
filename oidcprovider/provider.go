package oidcprovider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/ssobroker/ssobroker/tenants"
)

// Provider is the broker's OpenID Provider: zitadel's op over our Store,
// plus the login API the hosted page and the SAML ACS drive.
type Provider struct {
	cfg     Config
	st      Store
	log     *slog.Logger
	clock   tenants.Clock
	random  io.Reader
	keys    *keyManager
	op      *op.Provider
	storage *opStorage
	handler http.Handler
	// secureCookies: the browser-binding cookie is Secure unless the issuer
	// is http on loopback.
	secureCookies bool
	cors          map[string]bool
}

// cryptoKeySecret names the shared secret behind op.Config.CryptoKey.
const cryptoKeySecret = "op_crypto_key"

// New builds a provider. It reads (or, on first start, creates) the shared
// crypto key and the signing keys, so it fails fast when the store does.
func New(ctx context.Context, cfg Config, st Store) (*Provider, error) {
	cfg = cfg.withDefaults()
	insecure, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("oidcprovider: a Store is required")
	}
	p := &Provider{
		cfg: cfg, st: st, log: cfg.Logger, clock: cfg.Clock, random: cfg.Random,
		secureCookies: !insecure, cors: map[string]bool{},
	}
	p.storage = &opStorage{p: p}
	for _, o := range cfg.CORSAllowedOrigins {
		p.cors[o] = true
	}

	// op.Config.CryptoKey encrypts authorization codes and opaque access
	// tokens, so every replica must hold the same key, and it must be
	// secret: it is random, created once, and kept sealed with the master
	// key in the store (never a constant, never derived from config).
	var candidate [32]byte
	if _, err := io.ReadFull(cfg.Random, candidate[:]); err != nil {
		return nil, fmt.Errorf("oidcprovider: generating crypto key: %w", err)
	}
	key, err := st.Secret(ctx, cryptoKeySecret, candidate[:], cfg.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: reading crypto key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("oidcprovider: stored crypto key has %d bytes, want 32", len(key))
	}
	var cryptoKey [32]byte
	copy(cryptoKey[:], key)
	kid := sha256.Sum256(append([]byte("ssobroker op crypto key id\x00"), key...))

	p.keys = newKeyManager(cfg, st)
	if _, err := p.keys.snapshot(ctx); err != nil {
		return nil, fmt.Errorf("oidcprovider: signing keys: %w", err)
	}

	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              hex.EncodeToString(kid[:4]),
		DefaultLogoutRedirectURI: cfg.LoggedOutURL,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          supportedScopes,
		SupportedClaims:          supportedClaims,
	}
	opts := []op.Option{
		// zitadel's default CORS reflects any Origin with credentials; we
		// do CORS ourselves, explicitly (see corsMiddleware).
		op.WithCORSOptions(nil),
		// We issue only opaque access tokens, so no JWT is ever one: without
		// this, an ID token (signed by our keys) would pass as a bearer
		// token at /userinfo and /introspect.
		op.WithAccessTokenKeySet(noKeySet{}),
	}
	if insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	// Deliberately no op.WithCustom*Endpoint: those options write through
	// the package-global op.DefaultEndpoints and would change every other
	// provider in the process.
	p.op, err = op.NewProvider(opCfg, p.storage, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: %w", err)
	}
	p.handler = p.routes()
	return p, nil
}

// Handler serves every OIDC endpoint, to be mounted at "/". Discovery is at
// /.well-known/openid-configuration; see doc.go for the route map.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer returns the issuer.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// DeleteExpired removes expired logins, grants, tokens and signing keys (a
// job for one replica at a time, e.g. under a store lease).
func (p *Provider) DeleteExpired(ctx context.Context) (int64, error) {
	return p.st.DeleteExpiredOIDC(ctx, p.clock.Now())
}

// noKeySet verifies no JWT: see the WithAccessTokenKeySet option in New.
type noKeySet struct{}

func (noKeySet) VerifySignature(context.Context, *jose.JSONWebSignature) ([]byte, error) {
	return nil, errors.New("JWT access tokens are not accepted")
}

// hashToken is the stored form of codes and refresh tokens: their 256 bits
// of entropy need no slow hash, and the database never sees the token.
func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newID returns prefix + 128 random bits, base64url (no ':').
func (p *Provider) newID(prefix string) string {
	var b [16]byte
	if _, err := io.ReadFull(p.random, b[:]); err != nil {
		// crypto/rand does not fail; an injected reader that does is a
		// broken test setup, and an id must never be predictable.
		panic(fmt.Sprintf("oidcprovider: reading randomness: %v", err))
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// validS256Challenge: an S256 challenge is base64url(SHA-256), 43 chars.
func validS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

// s256 is the PKCE challenge of a verifier.
func s256(verifier string) string { return oidc.NewSHACodeChallenge(verifier) }

// validVerifier: RFC 7636 §4.1, 43 to 128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// validLoginID: lgn_ + 43 base64url characters (tenants.NewToken).
func validLoginID(id string) bool {
	if len(id) != len(prefixLogin)+43 || id[:len(prefixLogin)] != prefixLogin {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id[len(prefixLogin):])
	return err == nil
}
