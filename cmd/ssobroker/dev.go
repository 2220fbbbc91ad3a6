package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ssobroker/ssobroker/broker"
	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/seal"
	"github.com/ssobroker/ssobroker/tenants"
)

// devState is what `ssobroker dev` keeps between runs in its data folder,
// so a restart keeps the same keys, tenant, connection and client. It holds
// development secrets in the clear (mode 0600); it is never used by serve.
type devState struct {
	MasterKey     string `json:"master_key"`
	AdminToken    string `json:"admin_token"`
	SimulatorKey  string `json:"simulator_key_pem"`
	SimulatorCert string `json:"simulator_cert_pem"`
	TenantID      string `json:"tenant_id"`
	ConnectionID  string `json:"connection_id"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
}

const devDomain = "example.com"

// dev runs the broker with no setup: SQLite in a data folder, migrations
// applied, a demo tenant owning example.com whose connection points at the
// built-in IdP simulator, a demo client, and the demo app.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	start := time.Now()
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	dataDir := fs.String("data", "ssobroker-data", "folder for the database and dev state (delete it to start over)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := newLogger(stderr, "text", level)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w (another ssobroker dev running? pass --listen 127.0.0.1:8081)", *listen, err)
	}
	defer ln.Close()
	issuer := "http://" + ln.Addr().String()
	if host, port, _ := net.SplitHostPort(ln.Addr().String()); host == "0.0.0.0" || host == "::" {
		issuer = "http://127.0.0.1:" + port
	}

	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	statePath := filepath.Join(*dataDir, "dev.json")
	state, err := loadDevState(statePath)
	if err != nil {
		return err
	}
	masterKey, err := seal.ParseKey(state.MasterKey)
	if err != nil {
		return fmt.Errorf("%s: %w", statePath, err)
	}
	ring, err := seal.NewKeyring(masterKey, nil, nil)
	if err != nil {
		return err
	}
	dbURL := "sqlite:" + filepath.Join(*dataDir, "ssobroker.db")
	st, err := openStore(ctx, dbURL, ring, true, log)
	if err != nil {
		return err
	}
	defer st.Close()

	simKey, simCert, err := state.simulatorKey()
	if err != nil {
		return err
	}
	sim, err := saml.NewSimulator(saml.SimulatorConfig{BaseURL: issuer + "/simulator", Key: simKey, Certificate: simCert})
	if err != nil {
		return err
	}
	if err := provisionDev(ctx, st, issuer, sim, &state); err != nil {
		return fmt.Errorf("setting up the demo tenant: %w", err)
	}
	if err := saveDevState(statePath, state); err != nil {
		return err
	}

	var app *broker.App
	prov, err := oidcprovider.New(ctx, oidcprovider.Config{Issuer: issuer, Logger: log,
		OnRevoke: func(ctx context.Context, r oidcprovider.Revocation) { app.RecordRevocation(ctx, r) },
		ErrorPage: func(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
			app.ErrorPage(w, r, status, title, msg)
		},
	}, st)
	if err != nil {
		return err
	}
	app, err = broker.New(broker.Config{
		Issuer: issuer, AdminToken: tenants.Secret(state.AdminToken), Logger: log, CookieKey: cookieKey(masterKey),
		Dev:        &broker.DevOptions{Simulator: sim, DemoClient: broker.DemoClient{ID: state.ClientID, Secret: state.ClientSecret}},
		RateLimits: broker.RateLimits{LoginPerIP: 600, LoginPerTenant: 6000, ACSPerIP: 600, TokenPerClient: 6000, TokenPerIP: 6000, AdminPerIP: 6000},
	}, broker.Deps{
		Store:   st,
		Fetcher: &saml.MetadataFetcher{AllowLoopbackHTTP: true, AllowPrivateNetworks: true},
		OIDC:    prov,
	})
	if err != nil {
		return err
	}
	jobs, stopJobs := context.WithCancel(context.Background())
	defer stopJobs()
	go app.Run(jobs, broker.JobOptions{AuditRetention: 30 * 24 * time.Hour})

	fmt.Fprintf(stdout, `
ssobroker dev is ready (%s)

  Demo app         %[2]s/demo/
  IdP simulator    %[2]s/simulator/metadata  (its sign-in page opens when you sign in)
  OIDC discovery   %[2]s/.well-known/openid-configuration
  Admin API        %[2]s/api/v1   (OpenAPI: %[2]s/api/v1/openapi.json)
  Metrics          %[2]s/metrics

  Admin token      %[3]s
  Demo client      client_id=%[4]s
                   client_secret=%[5]s
  Demo tenant      %[6]s owns %[7]s; connection %[8]s uses the IdP simulator
  Chosen for you   issuer %[2]s, database %[9]s, master key %[10]s (in %[11]s)

Open the demo app, press "Sign in with SSO" and type any @%[7]s address.
Try it with curl:  curl -H "Authorization: Bearer %[3]s" %[2]s/api/v1/tenants

`, time.Since(start).Round(time.Millisecond), issuer, state.AdminToken, state.ClientID, state.ClientSecret,
		state.TenantID, devDomain, state.ConnectionID, dbURL, ring.CurrentKeyID(), statePath)
	return serveHTTP(ctx, ln, app.Handler(), 5*time.Second, log)
}

func loadDevState(path string) (devState, error) {
	var s devState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return s, fmt.Errorf("reading %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("%s is corrupt (delete the data folder to start over): %w", path, err)
		}
	}
	if s.MasterKey == "" {
		if s.MasterKey, err = seal.NewKey(nil); err != nil {
			return s, err
		}
	}
	if s.AdminToken == "" {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return s, err
		}
		s.AdminToken = "dev_" + base64.RawURLEncoding.EncodeToString(b[:])
	}
	return s, nil
}

func saveDevState(path string, s devState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// simulatorKey returns the simulator's key pair, creating it on first run
// (so the demo connection's trusted certificate survives restarts).
func (s *devState) simulatorKey() (*rsa.PrivateKey, *x509.Certificate, error) {
	if s.SimulatorKey != "" {
		kb, _ := pem.Decode([]byte(s.SimulatorKey))
		cb, _ := pem.Decode([]byte(s.SimulatorCert))
		if kb != nil && cb != nil {
			k, kerr := x509.ParsePKCS1PrivateKey(kb.Bytes)
			c, cerr := x509.ParseCertificate(cb.Bytes)
			if kerr == nil && cerr == nil {
				return k, c, nil
			}
		}
	}
	keyPEM, certPEM, err := saml.GenerateSPKey(rand.Reader, time.Now(), "ssobroker IdP simulator")
	if err != nil {
		return nil, nil, err
	}
	kb, _ := pem.Decode([]byte(keyPEM.Reveal()))
	cb, _ := pem.Decode([]byte(certPEM))
	if kb == nil || cb == nil {
		return nil, nil, errors.New("simulator key: unexpected PEM")
	}
	anyKey, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, ok := anyKey.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("simulator key: not RSA")
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	s.SimulatorKey = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	s.SimulatorCert = certPEM
	return k, c, nil
}

// provisionDev makes sure the demo tenant, its simulator connection and the
// demo client exist and match this run's issuer (the port may differ).
func provisionDev(ctx context.Context, st *store.Store, issuer string, sim *saml.Simulator, s *devState) error {
	dir := &tenants.Directory{Store: st, Clock: tenants.SystemClock{}, Random: rand.Reader}
	if _, err := st.Tenant(ctx, s.TenantID); err != nil {
		if !errors.Is(err, tenants.ErrNotFound) && s.TenantID != "" {
			return err
		}
		t, err := dir.CreateTenant(ctx, tenants.NewTenant{Name: "Example Inc (demo)", Domains: []string{devDomain}})
		if err != nil {
			return fmt.Errorf("%w (is %s held by another tenant? delete the data folder to start over)", err, devDomain)
		}
		s.TenantID, s.ConnectionID, s.ClientID, s.ClientSecret = t.ID, "", "", ""
	}
	now := time.Now().UTC()
	if _, err := st.UpdateConnection(ctx, s.ConnectionID, func(c *tenants.Connection) error {
		c.IdP, c.UpdatedAt = sim.IdPConfig(), now
		return nil
	}); err != nil {
		if !errors.Is(err, tenants.ErrNotFound) && s.ConnectionID != "" {
			return err
		}
		key, cert, err := saml.GenerateSPKey(rand.Reader, now, "ssobroker SP")
		if err != nil {
			return err
		}
		c, err := dir.CreateConnection(ctx, tenants.Connection{
			TenantID: s.TenantID, Name: "IdP simulator", Preset: tenants.PresetGeneric,
			IdP: sim.IdPConfig(), SPKey: key, SPCertificate: cert,
		})
		if err != nil {
			return err
		}
		s.ConnectionID = c.ID
	}
	redirects := []string{issuer + "/demo/callback"}
	logout := []string{issuer + "/demo/"}
	if _, err := st.UpdateClient(ctx, s.ClientID, func(c *tenants.Client) error {
		c.RedirectURIs, c.PostLogoutRedirectURIs, c.UpdatedAt = redirects, logout, now
		return nil
	}); err != nil || s.ClientSecret == "" {
		if err != nil && !errors.Is(err, tenants.ErrNotFound) && s.ClientID != "" {
			return err
		}
		c, secret, err := dir.CreateClient(ctx, tenants.NewClient{
			Name: "Demo app", RedirectURIs: redirects, PostLogoutRedirectURIs: logout,
			InitiateLoginURI: issuer + "/demo/login",
		})
		if err != nil {
			return err
		}
		s.ClientID, s.ClientSecret = c.ID, secret.Reveal()
	}
	return nil
}
