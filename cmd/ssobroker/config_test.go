package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	testToken = "0123456789abcdef0123456789abcdef"
	testKey   = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func noFile(string) ([]byte, error) { return nil, os.ErrNotExist }

func validEnv() map[string]string {
	return map[string]string{
		"SSOBROKER_ISSUER":       "https://sso.example.com",
		"SSOBROKER_DATABASE_URL": "sqlite:/tmp/x.db",
		"SSOBROKER_ADMIN_TOKEN":  testToken,
		"SSOBROKER_MASTER_KEY":   testKey,
	}
}

func TestLoadConfigDefaultsAndPrecedence(t *testing.T) {
	env := validEnv()
	env["SSOBROKER_LISTEN"] = "0.0.0.0:9000"
	env["SSOBROKER_CLOCK_SKEW"] = "1m"
	file := func(string) ([]byte, error) {
		return []byte(`{"clock-skew": "2m", "log-level": "debug", "trusted-proxies": ["10.0.0.0/8", "127.0.0.1/32"]}`), nil
	}
	c, err := loadConfig([]string{"--listen", "127.0.0.1:7000", "--config", "x.json"}, envOf(env), file, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7000" {
		t.Errorf("flag should win over env: listen = %s", c.Listen)
	}
	if c.ClockSkew != time.Minute {
		t.Errorf("env should win over file: clock skew = %s", c.ClockSkew)
	}
	if c.LogLevel.String() != "DEBUG" || len(c.TrustedProxies) != 2 {
		t.Errorf("file values not applied: %s %v", c.LogLevel, c.TrustedProxies)
	}
	if c.AccessTokenTTL != time.Hour || c.SigningAlgorithm != "RS256" || c.Issuer.String() != "https://sso.example.com" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLoadConfigReportsEveryProblemByName(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		wants []string
	}{
		{"nothing set", map[string]string{}, nil, []string{
			"SSOBROKER_ISSUER (--issuer) is required", "SSOBROKER_DATABASE_URL (--database-url) is required",
			"SSOBROKER_ADMIN_TOKEN (--admin-token) must be at least 32", "SSOBROKER_MASTER_KEY (--master-key) is required",
		}},
		{"http issuer off loopback", map[string]string{"SSOBROKER_ISSUER": "http://sso.example.com"}, nil, []string{"SSOBROKER_ISSUER (--issuer) must use https"}},
		{"bad values", validEnv(), []string{"--listen", "nope", "--clock-skew", "1h", "--master-key", "short", "--database-url", "mysql://x", "--trusted-proxies", "10.0.0.1"}, []string{
			"SSOBROKER_LISTEN (--listen) must be host:port", "SSOBROKER_CLOCK_SKEW (--clock-skew) must be between",
			"SSOBROKER_MASTER_KEY (--master-key)", "SSOBROKER_DATABASE_URL (--database-url) must be a postgres://",
			"SSOBROKER_TRUSTED_PROXIES (--trusted-proxies)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.args, envOf(tt.env), noFile, io.Discard)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestLoadConfigRejectsUnknownFileKeys(t *testing.T) {
	file := func(string) ([]byte, error) { return []byte(`{"isuer": "https://x.example"}`), nil }
	_, err := loadConfig([]string{"--config", "c.json"}, envOf(validEnv()), file, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "unknown settings isuer") {
		t.Fatalf("err = %v, want unknown setting", err)
	}
}

func TestSecretsNotInConfigErrors(t *testing.T) {
	env := validEnv()
	env["SSOBROKER_DATABASE_URL"] = "mysql://user:topsecretpw@db/x"
	env["SSOBROKER_ADMIN_TOKEN"] = "shortsecretvalue"
	_, err := loadConfig(nil, envOf(env), noFile, io.Discard)
	if err == nil {
		t.Fatal("want error")
	}
	for _, s := range []string{"topsecretpw", "shortsecretvalue"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error leaks %q: %v", s, err)
		}
	}
}

func TestRunUnknownCommand(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("stderr = %q", errOut.String())
	}
}
