package oidcprovider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/ssobroker/ssobroker/tenants"
)

// keyManager owns the ID-token signing keys: it creates them, rotates them
// with overlap, and serves them from memory.
//
// The schedule lives in the store, so every replica agrees on it: a key
// signs from its ActiveFrom until its successor's ActiveFrom, and the
// successor is created (and so published in the JWKS) at least
// publishAhead before it signs, because relying parties cache the JWKS and
// would reject tokens signed by a key they have not fetched. A retired key
// stays published for retain, the longest an ID token it signed can live.
// Replicas racing to create the next key collide on its unique generation;
// the losers read the winner's.
//
// Keys are read at most once per cacheTTL and each key is parsed once per
// process, so signing a token costs no store round trip and no parsing.
type keyManager struct {
	st           Store
	clock        tenants.Clock
	random       io.Reader
	log          *slog.Logger
	alg          string
	rotation     time.Duration
	publishAhead time.Duration
	retain       time.Duration
	cacheTTL     time.Duration

	snap atomic.Pointer[keySnapshot]

	mu     sync.Mutex            // serializes refreshes
	parsed map[string]*parsedKey // by kid; guarded by mu
}

// refreshBackoff is how long a snapshot keeps serving after a failed
// refresh before the next attempt.
const refreshBackoff = 5 * time.Second

type keySnapshot struct {
	loadedAt  time.Time
	keys      []*parsedKey // published keys, oldest generation first
	published []op.Key
	algs      []jose.SignatureAlgorithm
}

// signer is the newest published key that is active at now. When none is
// (only the first key, created by a replica whose clock is ahead of ours),
// it is the oldest: nothing else was ever published before it.
func (s *keySnapshot) signer(now time.Time) *parsedKey {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if !s.keys[i].activeFrom.After(now) {
			return s.keys[i]
		}
	}
	if len(s.keys) > 0 && s.keys[0].generation == 1 {
		return s.keys[0]
	}
	return nil
}

type parsedKey struct {
	id         string
	generation int64
	alg        jose.SignatureAlgorithm
	private    crypto.Signer
	activeFrom time.Time
	retireAt   time.Time
	expiresAt  time.Time
	signing    signingKey
	public     publicKey
}

// signingKey is the op.SigningKey view of a key.
type signingKey struct{ k *parsedKey }

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return s.k.alg }
func (s signingKey) Key() any                                    { return s.k.private }
func (s signingKey) ID() string                                  { return s.k.id }

// publicKey is the op.Key (JWKS) view of a key.
type publicKey struct{ k *parsedKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.k.private.Public() }

func newKeyManager(cfg Config, st Store) *keyManager {
	// The longest an ID token can live is the larger of our default and the
	// most a client may configure; add the skew verifiers allow and one
	// cache period of replicas that have not yet seen the successor.
	retain := max(cfg.IDTokenTTL, tenants.MaxIDTokenTTL) + cfg.ClockSkew + cfg.KeyCacheTTL
	return &keyManager{
		st: st, clock: cfg.Clock, random: cfg.Random, log: cfg.Logger, alg: cfg.SigningAlgorithm,
		rotation: cfg.KeyRotation, publishAhead: cfg.KeyPublishAhead, retain: retain, cacheTTL: cfg.KeyCacheTTL,
		parsed: map[string]*parsedKey{},
	}
}

// snapshot returns the keys, reading the store when the cache is stale.
func (m *keyManager) snapshot(ctx context.Context) (*keySnapshot, error) {
	now := m.clock.Now()
	if s := m.snap.Load(); s != nil && fresh(s.loadedAt, now, m.cacheTTL) {
		return s, nil
	}
	return m.refresh(ctx, now)
}

func fresh(loadedAt, now time.Time, ttl time.Duration) bool {
	age := now.Sub(loadedAt)
	return age >= 0 && age < ttl
}

func (m *keyManager) refresh(ctx context.Context, now time.Time) (*keySnapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.snap.Load()
	if old != nil && fresh(old.loadedAt, now, m.cacheTTL) {
		return old, nil // another goroutine refreshed while we waited
	}
	s, err := m.load(ctx, now)
	if err != nil {
		if old == nil || old.signer(now) == nil {
			return nil, err
		}
		// Keep signing with what we have: the schedule is known and the
		// next key is published a day ahead, so a store outage of minutes
		// must not stop token issuance. Retry after a short backoff.
		m.log.LogAttrs(ctx, slog.LevelError, "oidcprovider: refreshing signing keys failed; using cached keys", slog.Any("error", err))
		stale := *old
		stale.loadedAt = now.Add(refreshBackoff - m.cacheTTL)
		m.snap.Store(&stale)
		return &stale, nil
	}
	m.snap.Store(s)
	return s, nil
}

// load reads the keys, creates the next one when the schedule calls for it,
// and builds a snapshot.
func (m *keyManager) load(ctx context.Context, now time.Time) (*keySnapshot, error) {
	recs, err := m.st.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	if next, prevExpires, ok := m.plan(recs, now); ok {
		if err := m.create(ctx, next, prevExpires, now); err != nil && !errors.Is(err, tenants.ErrAlreadyExists) {
			return nil, err
		}
		// Whether we or another replica created it, read the outcome.
		if recs, err = m.st.SigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("reading signing keys: %w", err)
		}
	}
	s := &keySnapshot{loadedAt: now}
	for _, r := range recs {
		if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now) {
			continue // its tokens have all expired; GC deletes the row
		}
		k, err := m.parse(r)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
		s.published = append(s.published, k.public)
		if !containsAlg(s.algs, k.alg) {
			s.algs = append(s.algs, k.alg)
		}
	}
	if s.signer(now) == nil {
		return nil, errors.New("no active signing key")
	}
	return s, nil
}

// plan decides whether a key must be created now, and with which
// generation and activation.
func (m *keyManager) plan(recs []SigningKey, now time.Time) (next SigningKey, prevExpires time.Time, ok bool) {
	if len(recs) == 0 {
		// First start: nobody can have cached a JWKS yet, so the first key
		// signs at once.
		return SigningKey{Generation: 1, ActiveFrom: now}, time.Time{}, true
	}
	latest := recs[len(recs)-1]
	if latest.ActiveFrom.After(now) {
		return SigningKey{}, time.Time{}, false // the next key is already published
	}
	algChanged := latest.Algorithm != m.alg
	due := !now.Before(latest.ActiveFrom.Add(m.rotation - m.publishAhead))
	if !algChanged && !due {
		return SigningKey{}, time.Time{}, false
	}
	activeFrom := now.Add(m.publishAhead)
	if !algChanged {
		activeFrom = maxTime(activeFrom, latest.ActiveFrom.Add(m.rotation))
	}
	return SigningKey{Generation: latest.Generation + 1, ActiveFrom: activeFrom}, activeFrom.Add(m.retain), true
}

func (m *keyManager) create(ctx context.Context, k SigningKey, prevExpires, now time.Time) error {
	var (
		priv crypto.Signer
		err  error
	)
	switch m.alg {
	case algES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), m.random)
	default:
		priv, err = rsa.GenerateKey(m.random, 2048)
	}
	if err != nil {
		return fmt.Errorf("generating %s signing key: %w", m.alg, err)
	}
	k.PrivateKey, err = x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encoding signing key: %w", err)
	}
	k.PublicKey, err = x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return fmt.Errorf("encoding signing key: %w", err)
	}
	sum := sha256.Sum256(k.PublicKey)
	k.ID = base64.RawURLEncoding.EncodeToString(sum[:16])
	k.Algorithm = m.alg
	k.CreatedAt = now
	if err := m.st.CreateSigningKey(ctx, k, prevExpires); err != nil {
		return fmt.Errorf("storing signing key generation %d: %w", k.Generation, err)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "oidcprovider: created signing key",
		slog.String("kid", k.ID), slog.Int64("generation", k.Generation),
		slog.String("alg", k.Algorithm), slog.Time("active_from", k.ActiveFrom))
	return nil
}

// parse turns a stored key into a signer, once per key and process: RSA
// private keys are expensive to parse (and precompute).
func (m *keyManager) parse(r SigningKey) (*parsedKey, error) {
	if k, ok := m.parsed[r.ID]; ok {
		// The schedule of a known key can change (its successor sets
		// RetireAt and ExpiresAt); the key material cannot.
		if k.retireAt.Equal(r.RetireAt) && k.expiresAt.Equal(r.ExpiresAt) {
			return k, nil
		}
		c := *k
		c.retireAt, c.expiresAt = r.RetireAt, r.ExpiresAt
		c.signing, c.public = signingKey{&c}, publicKey{&c}
		m.parsed[r.ID] = &c
		return &c, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(r.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("parsing signing key %s: %w", r.ID, err)
	}
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if r.Algorithm != algRS256 || k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("signing key %s: RSA key does not match algorithm %s", r.ID, r.Algorithm)
		}
		alg = jose.RS256
	case *ecdsa.PrivateKey:
		if r.Algorithm != algES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key %s: EC key does not match algorithm %s", r.ID, r.Algorithm)
		}
		alg = jose.ES256
	default:
		return nil, fmt.Errorf("signing key %s: unsupported key type %T", r.ID, key)
	}
	p := &parsedKey{
		id: r.ID, generation: r.Generation, alg: alg, private: key.(crypto.Signer),
		activeFrom: r.ActiveFrom, retireAt: r.RetireAt, expiresAt: r.ExpiresAt,
	}
	p.signing, p.public = signingKey{p}, publicKey{p}
	m.parsed[r.ID] = p
	return p, nil
}

func containsAlg(l []jose.SignatureAlgorithm, a jose.SignatureAlgorithm) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// SigningKeyActiveSince reports when the key that signs now became
// active, from the cached key set (no store round trip while it is
// fresh). Monitoring alerts when it is older than the rotation period.
func (p *Provider) SigningKeyActiveSince(ctx context.Context) (time.Time, error) {
	s, err := p.keys.snapshot(ctx)
	if err != nil {
		return time.Time{}, err
	}
	k := s.signer(p.clock.Now())
	if k == nil {
		return time.Time{}, errors.New("oidcprovider: no active signing key")
	}
	return k.activeFrom, nil
}
