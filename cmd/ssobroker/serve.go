package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ssobroker/ssobroker/broker"
	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store/seal"
	"github.com/ssobroker/ssobroker/tenants"
)

// serve runs the broker in production mode until ctx is done (SIGTERM),
// then drains in-flight requests.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := osConfig(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	ring, err := seal.NewKeyring(cfg.MasterKey, cfg.PreviousMasterKeys, nil)
	if err != nil {
		return fmt.Errorf("SSOBROKER_MASTER_KEY: %w", err)
	}
	st, err := openStore(ctx, cfg.DatabaseURL.Reveal(), ring, cfg.MigrateOnStart, log)
	if err != nil {
		return err
	}
	defer st.Close()

	// The provider reports revocations to the app's audit log; the app is
	// built just below, before any request can revoke anything.
	var app *broker.App
	prov, err := oidcprovider.New(ctx, oidcprovider.Config{
		Issuer: cfg.Issuer.String(), Clock: tenants.SystemClock{}, Logger: log,
		OnRevoke: func(ctx context.Context, r oidcprovider.Revocation) { app.RecordRevocation(ctx, r) },
		ErrorPage: func(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
			app.ErrorPage(w, r, status, title, msg)
		},
		SigningAlgorithm: cfg.SigningAlgorithm, KeyRotation: cfg.KeyRotation,
		AccessTokenTTL: cfg.AccessTokenTTL, IDTokenTTL: cfg.IDTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL,
		ClockSkew: cfg.ClockSkew, CORSAllowedOrigins: cfg.CORSAllowedOrigins,
	}, st)
	if err != nil {
		return err
	}
	app, err = broker.New(broker.Config{
		Issuer:                  cfg.Issuer.String(),
		AdminToken:              cfg.AdminToken,
		TrustedProxies:          cfg.TrustedProxies,
		Logger:                  log,
		Clock:                   tenants.SystemClock{},
		MetadataRefreshInterval: cfg.MetadataRefreshInterval,
		CookieKey:               cookieKey(cfg.MasterKey),
		SAML:                    saml.Options{ClockSkew: cfg.ClockSkew},
		RateLimits: broker.RateLimits{
			Window: cfg.RateLimitWindow, LoginPerIP: cfg.RateLimitLoginPerIP, LoginPerTenant: cfg.RateLimitLoginPerTenant,
			ACSPerIP: cfg.RateLimitACSPerIP, TokenPerClient: cfg.RateLimitTokenPerClient, TokenPerIP: cfg.RateLimitTokenPerIP,
			AdminPerIP: cfg.RateLimitAdminPerIP, PortalPerIP: cfg.RateLimitAdminPerIP,
		},
	}, broker.Deps{
		Store:   st,
		Fetcher: &saml.MetadataFetcher{AllowPrivateNetworks: cfg.AllowPrivateMetadataURLs},
		OIDC:    prov,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("SSOBROKER_LISTEN (--listen): %w", err)
	}
	log.Info("ssobroker serving", slog.String("listen", ln.Addr().String()), slog.String("issuer", cfg.Issuer.String()),
		slog.String("store", st.Dialect()), slog.String("master_key_id", ring.CurrentKeyID()))
	jobs, stopJobs := context.WithCancel(context.Background())
	defer stopJobs()
	go app.Run(jobs, broker.JobOptions{AuditRetention: cfg.AuditRetention})
	return serveHTTP(ctx, ln, app.Handler(), cfg.ShutdownTimeout, log)
}

// cookieKey derives the key that MACs the hosted page's cookies from the
// master key, so every replica has the same one without another secret to
// distribute.
func cookieKey(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("ssobroker cookie key v1"))
	return m.Sum(nil)
}

// serveHTTP serves until ctx is done, then stops accepting connections and
// waits up to drain for in-flight requests to finish.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, drain time.Duration, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", slog.Duration("timeout", drain))
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
