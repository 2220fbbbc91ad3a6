package faulttest

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// runCmd runs the binary to completion with exactly env and returns its
// output and exit code.
func runCmd(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestMigrateCommand: `ssobroker migrate` applies the schema once and is
// idempotent; serve refuses an unmigrated database with one line naming
// the command; a missing configuration names every variable on one line.
func TestMigrateCommand(t *testing.T) {
	sqliteURL := "sqlite:" + filepath.Join(t.TempDir(), "fresh.db")
	pgURL := storetest.PostgresURL(t) // migrated already: must stay "up to date"

	t.Run("serve refuses an unmigrated database", func(t *testing.T) {
		c := newServeConfig(t, sqliteURL)
		env := append(c.env(), "SSOBROKER_MIGRATE=false")
		_, errOut, code := runCmd(t, env, "serve")
		if code != 1 || !strings.Contains(errOut, "run `ssobroker migrate`") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	for _, tt := range []struct {
		name, url, first string
	}{
		{"sqlite", sqliteURL, "applied 0001_directory, 0002_oidc"},
		{"postgres", pgURL, "schema is up to date"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := []string{"SSOBROKER_DATABASE_URL=" + tt.url}
			out, errOut, code := runCmd(t, env, "migrate")
			if code != 0 || !strings.Contains(out, tt.first) {
				t.Fatalf("first migrate: exit %d, %q %q", code, out, errOut)
			}
			out, _, code = runCmd(t, env, "migrate")
			if code != 0 || !strings.Contains(out, "schema is up to date at version 2") {
				t.Fatalf("second migrate: exit %d, %q", code, out)
			}
		})
	}
	t.Run("configuration errors", func(t *testing.T) {
		_, errOut, code := runCmd(t, []string{"SSOBROKER_LISTEN=nonsense"}, "serve")
		line := strings.TrimSpace(errOut)
		if code != 1 || strings.Contains(line, "\n") {
			t.Fatalf("exit %d, want 1 and one line: %q", code, errOut)
		}
		for _, v := range []string{"SSOBROKER_LISTEN", "SSOBROKER_ISSUER", "SSOBROKER_DATABASE_URL", "SSOBROKER_ADMIN_TOKEN", "SSOBROKER_MASTER_KEY"} {
			if !strings.Contains(line, v) {
				t.Errorf("the error does not name %s: %q", v, line)
			}
		}
	})
}

// TestRotateMasterKey follows docs/operations.md: restart with the new key
// current and the old one previous, run rotate-master-key, and start with
// the new key alone. Logins keep working throughout, which needs every
// sealed key (SP keys, OIDC signing keys, the code/token key) to open.
func TestRotateMasterKey(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "rotate.db")
	idp := newTestIdP(t)
	c := newServeConfig(t, dbURL)
	oldKey, newKey := c.masterKey, newMasterKey(t)

	p := startServe(t, "serve with the old key", c)
	s := setupSite(t, c.issuer, idp)
	before := signIn(t, s, "jane@acme.com")
	stop(t, p)

	c.masterKey, c.extra = newKey, []string{"SSOBROKER_PREVIOUS_MASTER_KEYS=" + oldKey}
	p = startServe(t, "serve during rotation", c)
	signIn(t, s, "jane@acme.com")

	rotate := []string{"SSOBROKER_DATABASE_URL=" + dbURL, "SSOBROKER_MASTER_KEY=" + newKey, "SSOBROKER_PREVIOUS_MASTER_KEYS=" + oldKey}
	out, errOut, code := runCmd(t, rotate, "rotate-master-key")
	if code != 0 || !strings.Contains(out, "re-sealed ") || strings.Contains(out, "re-sealed 0 ") {
		t.Fatalf("rotate-master-key: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runCmd(t, rotate, "rotate-master-key")
	if code != 0 || !strings.Contains(out, "re-sealed 0 ") {
		t.Fatalf("a second run should find nothing to do: exit %d, %q", code, out)
	}
	stop(t, p)

	c.extra = nil // the old key is gone
	startServe(t, "serve with the new key alone", c)
	after := signIn(t, s, "jane@acme.com")
	if after.idToken.Subject != before.idToken.Subject {
		t.Fatalf("sub changed across the rotation: %s then %s", before.idToken.Subject, after.idToken.Subject)
	}
}

func stop(t *testing.T, p *proc) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	if code, err := p.wait(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("%s: exit %d, %v", p.name, code, err)
	}
}
