package store_test

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// BenchmarkLoginPath measures the store calls one login makes, on each
// backend: routing the email, the ACS's cache check, loading the
// connection, the replay check and the identity upsert.
func BenchmarkLoginPath(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.Open(b)
			ctx := b.Context()
			now := time.Now().UTC()
			newID := func(prefix string) string {
				id, err := tenants.NewID(prefix, now, rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				return id
			}
			tn := tenants.Tenant{ID: newID(tenants.PrefixTenant), Name: "Bench", CreatedAt: now, UpdatedAt: now,
				Domains: []tenants.Domain{{Name: "bench.example", Verified: true, CreatedAt: now}}}
			if err := s.CreateTenant(ctx, tn); err != nil {
				b.Fatal(err)
			}
			conn := tenants.Connection{ID: newID(tenants.PrefixConnection), TenantID: tn.ID, Name: "Okta",
				Status: tenants.StatusActive, Preset: tenants.PresetOkta,
				IdP: tenants.IdPConfig{EntityID: "http://www.okta.com/x", SSOPostURL: "https://idp.example/sso",
					Certificates: []string{"-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n"}},
				SPKey: "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n", SPCertificate: "cert",
				CreatedAt: now, UpdatedAt: now}
			if err := s.CreateConnection(ctx, conn); err != nil {
				b.Fatal(err)
			}
			id := tenants.Identity{TenantID: tn.ID, ConnectionID: conn.ID, IdPSubject: "ada", Email: "ada@bench.example",
				Status: tenants.IdentityActive, CreatedAt: now, UpdatedAt: now, LastLoginAt: now,
				Profile: tenants.Profile{Subject: "ada", NameID: "ada", Email: "ada@bench.example", Groups: []string{"a", "b"},
					Attributes: map[string][]string{"mail": {"ada@bench.example"}}}}

			b.Run("RouteDomain", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.RouteDomain(ctx, "bench.example"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("ConnectionRef", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.ConnectionRef(ctx, conn.ID); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Connection", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.Connection(ctx, conn.ID); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("AcceptOnce", func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					if err := s.AcceptOnce(ctx, conn.ID, fmt.Sprintf("_a%d", i), now.Add(time.Hour)); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("UpsertIdentity", func(b *testing.B) {
				for b.Loop() {
					id.Subject = newID(tenants.PrefixIdentity)
					if _, err := s.UpsertIdentity(ctx, id); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
