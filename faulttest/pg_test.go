package faulttest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// privatePG is a PostgreSQL cluster of this test alone, started with
// scripts/pg-throwaway: the shared test cluster is never stopped, as other
// packages use it concurrently.
type privatePG struct {
	t      *testing.T
	dir    string // the cluster's folder; data in dir/data, socket in dir
	url    string
	bindir string
}

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	script := filepath.Join(repoRoot, "scripts", "pg-throwaway")
	out, err := exec.Command(script, "start").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s start: %v\n%s", script, err, stderr)
	}
	pg := &privatePG{t: t}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, "'")
		switch k {
		case "SSOBROKER_TEST_PGDATA":
			pg.dir = v
		case "SSOBROKER_TEST_DATABASE_URL":
			pg.url = v
		}
	}
	if pg.dir == "" || pg.url == "" {
		t.Fatalf("%s start printed no cluster: %q", script, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", pg.dir).CombinedOutput(); err != nil {
			t.Errorf("%s stop %s: %v\n%s", script, pg.dir, err, out)
		}
	})
	if pg.bindir, err = pgBindir(); err != nil {
		t.Fatal(err)
	}
	return pg
}

// pgBindir finds the server binaries as scripts/pg-throwaway does.
func pgBindir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for _, d := range append(dirs, "/usr/local/pgsql/bin") {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries found (install postgresql)")
}

// pgCtl runs pg_ctl as the cluster's owner (postgres when we are root,
// as scripts/pg-throwaway does).
func (pg *privatePG) pgCtl(args ...string) error {
	name := filepath.Join(pg.bindir, "pg_ctl")
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// stop shuts the server down the way an operator's restart does:
// fast mode, clients disconnected.
func (pg *privatePG) stop() {
	pg.t.Helper()
	if err := pg.pgCtl("-D", filepath.Join(pg.dir, "data"), "-m", "fast", "-w", "-t", "30", "stop"); err != nil {
		pg.t.Fatal(err)
	}
}

// start starts it again with scripts/pg-throwaway's settings.
func (pg *privatePG) start() {
	pg.t.Helper()
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", pg.dir)
	err := pg.pgCtl("-D", filepath.Join(pg.dir, "data"), "-l", filepath.Join(pg.dir, "server.log"), "-w", "-t", "60", "-o", opts, "start")
	if err != nil {
		pg.t.Fatal(err)
	}
}
