package store_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// crashChildEnv switches the test binary into the writer that
// TestCrashConsistency kills; it holds the database URL.
const crashChildEnv = "SSOBROKER_STORE_CRASH_WRITER_URL"

const crashDomainsPerTenant = 5

// TestCrashConsistency kills a writing process with SIGKILL in the middle
// of a stream of multi-row transactions (a tenant with five domains each)
// and checks what survives: every tenant has exactly its five domains,
// every commit the writer reported is there, and the store takes writes
// again. It re-executes the test binary as the writer.
func TestCrashConsistency(t *testing.T) {
	if u := os.Getenv(crashChildEnv); u != "" {
		crashWriter(t, u)
		return
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			u := b.URL(t)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashConsistency$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+u)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}

			// Let the writer commit for a while, then kill it without
			// warning wherever it is.
			committed := map[string]bool{}
			lines := bufio.NewScanner(out)
			killAt := time.Now().Add(3 * time.Second)
			killed := false
			for lines.Scan() {
				if id, ok := strings.CutPrefix(lines.Text(), "committed "); ok {
					committed[id] = true
				}
				if !killed && (len(committed) >= 40 || time.Now().After(killAt)) {
					if err := cmd.Process.Kill(); err != nil { // SIGKILL
						t.Fatal(err)
					}
					killed = true
				}
			}
			err = cmd.Wait()
			if !killed || err == nil {
				t.Fatalf("the writer ended on its own (%v) before it was killed", err)
			}
			if len(committed) < 10 {
				t.Fatalf("the writer committed only %d tenants before it was killed", len(committed))
			}

			s := storetest.OpenURL(t, u)
			found := 0
			after := ""
			for {
				items, next, err := s.ListTenants(t.Context(), tenants.Page{Limit: tenants.MaxPageLimit, After: after})
				if err != nil {
					t.Fatalf("list tenants after the crash: %v", err)
				}
				for _, tn := range items {
					found++
					if len(tn.Domains) != crashDomainsPerTenant {
						t.Errorf("tenant %s has %d domains after the crash, want %d", tn.ID, len(tn.Domains), crashDomainsPerTenant)
					}
					delete(committed, tn.ID)
				}
				if next == "" {
					break
				}
				after = next
			}
			if len(committed) > 0 {
				t.Errorf("%d tenants reported committed are missing after the crash", len(committed))
			}
			if n := countDomains(t, s); n != found*crashDomainsPerTenant {
				t.Errorf("%d domains for %d tenants after the crash: a half-written record", n, found)
			}
			t.Logf("%d tenants survived the crash whole", found)
			if err := s.CreateTenant(t.Context(), crashTenant(t)); err != nil {
				t.Fatalf("write after the crash: %v", err)
			}
		})
	}
}

func countDomains(t *testing.T, s *store.Store) int {
	var n int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM domains`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func crashTenant(t testing.TB) tenants.Tenant {
	now := time.Now().UTC()
	id, err := tenants.NewID(tenants.PrefixTenant, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tn := tenants.Tenant{ID: id, Name: "crash " + id, CreatedAt: now, UpdatedAt: now}
	for i := range crashDomainsPerTenant {
		tn.Domains = append(tn.Domains, tenants.Domain{Name: fmt.Sprintf("d%d.%s.example", i, id), TenantID: id, Verified: true, CreatedAt: now})
	}
	return tn
}

// crashWriter creates tenants from a few goroutines until it is killed, so
// that several transactions are in flight at any moment, and prints each
// commit. It gives up after a while so that it never outlives a parent
// that died.
func crashWriter(t *testing.T, u string) {
	s, err := store.Open(t.Context(), u, store.Options{Sealer: storetest.TestKeyring(t)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				tn := crashTenant(t)
				if err := s.CreateTenant(t.Context(), tn); err != nil {
					t.Error(err)
					return
				}
				fmt.Println("committed " + tn.ID) // one write(2), atomic on a pipe
			}
		})
	}
	wg.Wait()
}
