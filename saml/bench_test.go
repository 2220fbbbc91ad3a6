package saml

import (
	"context"
	"testing"

	"github.com/ssobroker/ssobroker/tenants"
)

// BenchmarkValidateResponse validates a typical response: Response and
// Assertion both signed (RSA-2048, RSA-SHA256, exclusive c14n), six
// attributes, Okta style. The same response is validated on every
// iteration against a replay cache that accepts everything (acceptAll), so
// the number is the cost of validation alone, not of re-signing.
func BenchmarkValidateResponse(b *testing.B) {
	e := newTestEnv(b)
	u := alice()
	u.Attributes = map[string][]string{"department": {"R&D"}}
	id, doc := e.login(b, u, Scenario{Sign: SignBoth})
	ctx := context.Background()
	withCrewjamNow(testNow, func() {
		if _, err := e.sp.ValidateResponse(ctx, doc, id, acceptAll{}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.sp.ValidateResponse(ctx, doc, id, acceptAll{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNewAuthnRequest builds HTTP-Redirect AuthnRequests, unsigned
// and signed (RSA-SHA256 over the query string).
func BenchmarkNewAuthnRequest(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) {
			e := newTestEnv(b, func(c *tenants.Connection) { c.Policy.SignAuthnRequests = signed })
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.sp.NewAuthnRequest("relay", false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
