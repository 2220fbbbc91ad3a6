package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/tenants"
)

// The concurrency tests run on both backends, through two store handles on
// one database (two replicas), each round released at once to maximise
// contention, and repeated so that an unlucky interleaving shows up.
const rounds = 20

// exactlyOne checks that of errs exactly one is nil and every other
// matches loser.
func exactlyOne(t testing.TB, what string, errs []error, loser error) (winner int) {
	t.Helper()
	winner = -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: callers %d and %d both won", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Fatalf("%s: caller %d: got error %v, want one matching %q", what, i, err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: nobody won: %v", what, errs)
	}
	return winner
}

func testConcurrentDomainClaim(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := twoHandles(t, b)
	existing := [2]tenants.Tenant{createTenant(t, hs[0]), createTenant(t, hs[1])}
	for round := range rounds {
		domain := fmt.Sprintf("claim%d.example", round)
		var tns [2]tenants.Tenant
		for i := range tns {
			tns[i] = newTenant(t, domain, fmt.Sprintf("extra%d-%d.example", round, i))
		}
		// Even rounds race two CreateTenant calls; odd rounds race a
		// CreateTenant with an AddDomain to an existing tenant.
		errs := race(2, func(i int) error {
			if round%2 == 1 && i == 1 {
				return hs[i].AddDomain(ctx, tenants.Domain{Name: domain, TenantID: existing[i].ID, CreatedAt: base})
			}
			return hs[i].CreateTenant(ctx, tns[i])
		})
		w := exactlyOne(t, "claim "+domain, errs, tenants.ErrDomainTaken)
		var dte *tenants.DomainTakenError
		if !errors.As(errs[1-w], &dte) || dte.Domain != domain {
			t.Fatalf("claim %s: loser's error %v is not a DomainTakenError for it", domain, errs[1-w])
		}
		owner := tns[w].ID
		if round%2 == 1 && w == 1 {
			owner = existing[1].ID
		}
		d, err := hs[0].Domain(ctx, domain)
		check(t, err, "claimed domain")
		equal(t, "owner of "+domain, d.TenantID, owner)
		if round%2 == 0 || w == 1 {
			loser := tns[1-w]
			if _, err := hs[1].Tenant(ctx, loser.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the losing CreateTenant left its tenant behind: %v", err)
			}
			extra := fmt.Sprintf("extra%d-%d.example", round, 1-w)
			if _, err := hs[1].Domain(ctx, extra); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the losing CreateTenant left %s behind: %v", extra, err)
			}
		}
	}
}

func testConcurrentAcceptOnce(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := twoHandles(t, b)
	expires := time.Now().Add(time.Hour)
	for round := range rounds {
		id := fmt.Sprintf("_assertion%d", round)
		errs := race(8, func(i int) error { return hs[i%2].AcceptOnce(ctx, "conn_a", id, expires) })
		exactlyOne(t, "accept "+id, errs, store.ErrAlreadyExists)
	}
}

func testConcurrentOpenPortalLink(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := twoHandles(t, b)
	tn := createTenant(t, hs[0])
	for round := range rounds {
		hash := fmt.Sprintf("link%d", round)
		check(t, hs[0].CreatePortalLink(ctx, hash, tn.ID, base, base.Add(time.Hour)), "create link")
		got := make([]string, 8)
		errs := race(8, func(i int) (err error) {
			got[i], err = hs[i%2].OpenPortalLink(ctx, hash, base.Add(time.Minute))
			return err
		})
		w := exactlyOne(t, "open "+hash, errs, store.ErrNotFound)
		equal(t, "tenant of the opened link", got[w], tn.ID)
	}
}

// testConcurrentUpdateTenant increments a counter kept in the tenant's name
// from many goroutines on two handles: the row lock must make every
// read-modify-write see the previous one, so no increment is lost.
func testConcurrentUpdateTenant(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := twoHandles(t, b)
	tn := newTenant(t)
	tn.Name = "0"
	check(t, hs[0].CreateTenant(ctx, tn), "create tenant")
	const workers, increments = 6, 10
	errs := race(workers, func(i int) error {
		for range increments {
			_, err := hs[i%2].UpdateTenant(ctx, tn.ID, func(t *tenants.Tenant) error {
				n, err := strconv.Atoi(t.Name)
				if err != nil {
					return err
				}
				t.Name = strconv.Itoa(n + 1)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		check(t, err, fmt.Sprintf("worker %d", i))
	}
	got, err := hs[1].Tenant(ctx, tn.ID)
	check(t, err, "get tenant")
	equal(t, "counter", got.Name, strconv.Itoa(workers*increments))
}

func testConcurrentAcquireLease(t *testing.T, b Backend) {
	ctx := t.Context()
	hs := twoHandles(t, b)
	for round := range rounds {
		name := fmt.Sprintf("job%d", round)
		won := make([]bool, 8)
		errs := race(8, func(i int) (err error) {
			won[i], err = hs[i%2].AcquireLease(ctx, name, fmt.Sprintf("replica%d", i), time.Minute, base)
			return err
		})
		winners := 0
		for i, err := range errs {
			check(t, err, fmt.Sprintf("acquire %s by %d", name, i))
			if won[i] {
				winners++
			}
		}
		equal(t, "holders of "+name, winners, 1)
	}
}
