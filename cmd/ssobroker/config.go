package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/store/seal"
	"github.com/ssobroker/ssobroker/tenants"
)

// Config is the whole configuration of `ssobroker serve`. Every field has a
// flag and an SSOBROKER_* variable; docs/config.md lists them.
type Config struct {
	Listen             string
	Issuer             *url.URL
	DatabaseURL        tenants.Secret // may carry a password
	AdminToken         tenants.Secret
	MasterKey          []byte
	PreviousMasterKeys [][]byte
	MigrateOnStart     bool
	LogLevel           slog.Level
	LogFormat          string
	TrustedProxies     []netip.Prefix

	ClockSkew               time.Duration
	SigningAlgorithm        string
	KeyRotation             time.Duration
	AccessTokenTTL          time.Duration
	IDTokenTTL              time.Duration
	RefreshTokenTTL         time.Duration
	MetadataRefreshInterval time.Duration
	AuditRetention          time.Duration
	ShutdownTimeout         time.Duration
	CORSAllowedOrigins      []string

	RateLimitLoginPerIP      int
	RateLimitLoginPerTenant  int
	RateLimitACSPerIP        int
	RateLimitTokenPerClient  int
	RateLimitTokenPerIP      int
	RateLimitAdminPerIP      int
	RateLimitWindow          time.Duration
	AllowPrivateMetadataURLs bool
}

// setting is one configuration knob: its flag, its variable, its default,
// and how to parse it into Config.
type setting struct {
	name   string // flag name; the variable is SSOBROKER_ + upper snake case
	def    string
	usage  string
	secret bool
	set    func(c *Config, v string) error
}

func (s setting) env() string {
	return "SSOBROKER_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

func duration(dst func(*Config) *time.Duration, lo, hi time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("must be a duration such as 90s, 15m or 12h")
		}
		if d < lo || d > hi {
			return fmt.Errorf("must be between %s and %s", lo, hi)
		}
		*dst(c) = d
		return nil
	}
}

func integer(dst func(*Config) *int, lo, hi int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be an integer from %d to %d", lo, hi)
		}
		*dst(c) = n
		return nil
	}
}

func boolean(dst func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		*dst(c) = b
		return nil
	}
}

// settings is the table of every knob, in the order docs/config.md lists
// them.
var settings = []setting{
	{name: "listen", def: "127.0.0.1:8080", usage: "address to listen on (host:port)", set: func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port")
		}
		c.Listen = v
		return nil
	}},
	{name: "issuer", usage: "public base URL of the broker, also the OIDC issuer (https, or http on a loopback host)", set: func(c *Config, v string) error {
		u, err := url.Parse(strings.TrimRight(v, "/"))
		switch {
		case v == "":
			return errors.New("is required")
		case err != nil || !u.IsAbs() || u.Host == "":
			return errors.New("must be an absolute URL such as https://sso.example.com")
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return errors.New("must not carry a query, fragment or user info")
		case u.Scheme == "https":
		case u.Scheme == "http" && tenants.IsLoopbackHost(u.Hostname()):
		default:
			return errors.New("must use https (http is allowed only for a loopback host)")
		}
		c.Issuer = u
		return nil
	}},
	{name: "database-url", secret: true, usage: "postgres://... (production) or sqlite:PATH", set: func(c *Config, v string) error {
		switch {
		case v == "":
			return errors.New("is required (postgres://user:pass@host/db or sqlite:/path/ssobroker.db)")
		case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"), strings.HasPrefix(v, "sqlite:"):
			c.DatabaseURL = tenants.Secret(v)
			return nil
		}
		return errors.New("must be a postgres://, postgresql:// or sqlite:PATH URL")
	}},
	{name: "admin-token", secret: true, usage: "bearer token for /api/v1 (at least 32 characters)", set: func(c *Config, v string) error {
		if len(v) < 32 {
			return errors.New("must be at least 32 characters (try: openssl rand -base64 32)")
		}
		c.AdminToken = tenants.Secret(v)
		return nil
	}},
	{name: "master-key", secret: true, usage: "32-byte key (base64 or hex) that encrypts private keys at rest; generate one with `ssobroker gen-master-key`", set: func(c *Config, v string) error {
		if v == "" {
			return errors.New("is required (generate one with: ssobroker gen-master-key)")
		}
		k, err := seal.ParseKey(v)
		if err != nil {
			return err
		}
		c.MasterKey = k
		return nil
	}},
	{name: "previous-master-keys", secret: true, usage: "comma-separated old master keys, still accepted for reading during a rotation", set: func(c *Config, v string) error {
		c.PreviousMasterKeys = nil
		for i, part := range splitList(v) {
			k, err := seal.ParseKey(part)
			if err != nil {
				return fmt.Errorf("key %d: %w", i+1, err)
			}
			c.PreviousMasterKeys = append(c.PreviousMasterKeys, k)
		}
		return nil
	}},
	{name: "migrate", def: "false", usage: "apply pending database migrations at start", set: boolean(func(c *Config) *bool { return &c.MigrateOnStart })},
	{name: "log-level", def: "info", usage: "debug, info, warn or error", set: func(c *Config, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}},
	{name: "log-format", def: "json", usage: "json or text", set: func(c *Config, v string) error {
		if v != "json" && v != "text" {
			return errors.New(`must be "json" or "text"`)
		}
		c.LogFormat = v
		return nil
	}},
	{name: "trusted-proxies", usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is trusted", set: func(c *Config, v string) error {
		c.TrustedProxies = nil
		for _, part := range splitList(v) {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", part)
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
		return nil
	}},
	{name: "clock-skew", def: "3m", usage: "allowed clock difference with IdPs", set: duration(func(c *Config) *time.Duration { return &c.ClockSkew }, 0, 10*time.Minute)},
	{name: "signing-algorithm", def: "RS256", usage: "ID token signing algorithm: RS256 or ES256", set: func(c *Config, v string) error {
		if v != "RS256" && v != "ES256" {
			return errors.New("must be RS256 or ES256")
		}
		c.SigningAlgorithm = v
		return nil
	}},
	{name: "key-rotation", def: "720h", usage: "how often OIDC signing keys rotate", set: duration(func(c *Config) *time.Duration { return &c.KeyRotation }, 24*time.Hour, 365*24*time.Hour)},
	{name: "access-token-ttl", def: "1h", usage: "default access token lifetime", set: duration(func(c *Config) *time.Duration { return &c.AccessTokenTTL }, time.Minute, 24*time.Hour)},
	{name: "id-token-ttl", def: "15m", usage: "default ID token lifetime", set: duration(func(c *Config) *time.Duration { return &c.IDTokenTTL }, time.Minute, 24*time.Hour)},
	{name: "refresh-token-ttl", def: "720h", usage: "default refresh token lifetime", set: duration(func(c *Config) *time.Duration { return &c.RefreshTokenTTL }, time.Hour, 365*24*time.Hour)},
	{name: "metadata-refresh-interval", def: "12h", usage: "how often IdP metadata URLs are fetched again", set: duration(func(c *Config) *time.Duration { return &c.MetadataRefreshInterval }, 5*time.Minute, 7*24*time.Hour)},
	{name: "audit-retention", def: "2160h", usage: "how long audit events are kept", set: duration(func(c *Config) *time.Duration { return &c.AuditRetention }, 24*time.Hour, 10*365*24*time.Hour)},
	{name: "shutdown-timeout", def: "20s", usage: "how long SIGTERM waits for in-flight requests", set: duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout }, time.Second, 5*time.Minute)},
	{name: "cors-allowed-origins", usage: "comma-separated origins allowed to call the token, userinfo and discovery endpoints from browsers", set: func(c *Config, v string) error {
		c.CORSAllowedOrigins = nil
		for _, o := range splitList(v) {
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return fmt.Errorf("%q is not an origin such as https://app.example.com", o)
			}
			c.CORSAllowedOrigins = append(c.CORSAllowedOrigins, strings.TrimRight(o, "/"))
		}
		return nil
	}},
	{name: "rate-limit-login-per-ip", def: "300", usage: "authorization requests and hosted page views and submissions per IP per window (a login spends about 3)", set: integer(func(c *Config) *int { return &c.RateLimitLoginPerIP }, 1, 1_000_000)},
	{name: "rate-limit-login-per-tenant", def: "6000", usage: "logins routed to one tenant per window", set: integer(func(c *Config) *int { return &c.RateLimitLoginPerTenant }, 1, 10_000_000)},
	{name: "rate-limit-acs-per-ip", def: "60", usage: "SAML responses per IP per window", set: integer(func(c *Config) *int { return &c.RateLimitACSPerIP }, 1, 1_000_000)},
	{name: "rate-limit-token-per-client", def: "6000", usage: "token endpoint requests per client per window", set: integer(func(c *Config) *int { return &c.RateLimitTokenPerClient }, 1, 10_000_000)},
	{name: "rate-limit-token-per-ip", def: "600", usage: "token endpoint requests per IP per window", set: integer(func(c *Config) *int { return &c.RateLimitTokenPerIP }, 1, 10_000_000)},
	{name: "rate-limit-admin-per-ip", def: "600", usage: "admin API and tenant portal requests per IP per window", set: integer(func(c *Config) *int { return &c.RateLimitAdminPerIP }, 1, 10_000_000)},
	{name: "rate-limit-window", def: "1m", usage: "rate limit window", set: duration(func(c *Config) *time.Duration { return &c.RateLimitWindow }, time.Second, time.Hour)},
	{name: "allow-private-metadata-urls", def: "false", usage: "allow IdP metadata URLs on private networks (on-premises IdPs)", set: boolean(func(c *Config) *bool { return &c.AllowPrivateMetadataURLs })},
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// loadConfig resolves every setting: flag, then SSOBROKER_* variable, then
// the optional JSON config file (--config / SSOBROKER_CONFIG), then the
// default. It reports every invalid or missing value at once, each naming
// its variable and flag, so one failed start shows everything to fix.
func loadConfig(args []string, getenv func(string) string, readFile func(string) ([]byte, error), stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagVals := map[string]*string{}
	for _, s := range settings {
		flagVals[s.name] = fs.String(s.name, "", s.usage+defaultNote(s))
	}
	configPath := fs.String("config", "", "JSON file of settings keyed by flag name")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ssobroker serve [flags]\n\nEvery flag can also be set as SSOBROKER_<NAME> (e.g. --database-url: SSOBROKER_DATABASE_URL).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	setByFlag := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setByFlag[f.Name] = true })

	file := map[string]string{}
	path := *configPath
	if path == "" {
		path = getenv("SSOBROKER_CONFIG")
	}
	if path != "" {
		var err error
		if file, err = readConfigFile(path, readFile); err != nil {
			return Config{}, err
		}
	}

	var c Config
	var problems []string
	for _, s := range settings {
		v := s.def
		if fv, in := file[s.name]; in {
			v = fv
		}
		if ev := getenv(s.env()); ev != "" {
			v = ev
		}
		if setByFlag[s.name] {
			v = *flagVals[s.name]
		}
		if err := s.set(&c, v); err != nil {
			problems = append(problems, fmt.Sprintf("%s (--%s) %s", s.env(), s.name, err))
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

func defaultNote(s setting) string {
	if s.def == "" {
		return ""
	}
	return " (default " + s.def + ")"
}

// readConfigFile reads a flat JSON object of setting names to values and
// rejects unknown keys: a misspelt setting must not be silently ignored.
func readConfigFile(path string, readFile func(string) ([]byte, error)) (map[string]string, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	raw := map[string]any{}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.name] = true
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		if !known[k] {
			unknown = append(unknown, k)
			continue
		}
		switch t := v.(type) {
		case string:
			out[k] = t
		case bool, float64:
			out[k] = fmt.Sprint(t)
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			out[k] = strings.Join(parts, ",")
		default:
			return nil, fmt.Errorf("config file %s: %q must be a string, number, boolean or list", path, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config file %s: unknown settings %s", path, strings.Join(unknown, ", "))
	}
	return out, nil
}

// osConfig loads the configuration from the process environment.
func osConfig(args []string, stderr io.Writer) (Config, error) {
	return loadConfig(args, os.Getenv, os.ReadFile, stderr)
}
