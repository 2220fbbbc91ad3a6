package saml

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRejectError(t *testing.T) {
	cause := errors.New("cause")
	err := error(rejectWrap(ReasonExpired, cause, "assertion NotOnOrAfter %s has passed", "x"))
	if err.Error() != "expired: assertion NotOnOrAfter x has passed" {
		t.Fatalf("Error() = %q", err)
	}
	if !errors.Is(err, cause) {
		t.Fatal("Unwrap does not reach the cause")
	}
	if got := q("a\nb"); got != `"a\nb"` {
		t.Fatalf("q = %s: a newline could forge a log line", got)
	}
	if got := q(strings.Repeat("é", 300)); len(got) > maxQuoted+10 {
		t.Fatalf("q does not truncate: %d bytes", len(got))
	}
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if !r.Valid() || seen[r] || strings.ToLower(string(r)) != string(r) {
			t.Fatalf("bad reason %q", r)
		}
		seen[r] = true
	}
	if Reason("nope").Valid() {
		t.Fatal("unknown reason valid")
	}
}

// TestCrewjamReason covers crewjamReason, the one place that reads
// crewjam's error text: every entry is triggered for real through
// parseWithCrewjam (our pre-checks bypassed) where crewjam v0.5.1 can
// produce it; entries our hooks make unreachable are fed crewjam's literal
// message, so that they keep working if a hook is ever dropped.
func TestCrewjamReason(t *testing.T) {
	e := newTestEnv(t)
	crew := func(doc []byte, requestID string, crewNow time.Time) error {
		var err error
		withCrewjamNow(crewNow, func() {
			v := newVerifier(e.sp, testNow)
			if _, err = e.sp.parseWithCrewjam(doc, requestID, v); err != nil {
				err = crewjamReason(err, v)
			}
		})
		return err
	}
	sim := func(sc Scenario, crewNow time.Time) error {
		id, doc := e.login(t, alice(), sc)
		return crew(doc, id, crewNow)
	}
	crafted := func(mod func(*craft), ids ...string) error {
		c := e.craft("req-1")
		mod(c)
		return crew(e.signed(t, c, ids...), "req-1", testNow)
	}
	literal := func(msg string) error { return crewjamReason(fmt.Errorf("%s", msg), nil) }

	for _, tc := range []struct {
		name string
		err  func() error
		want Reason
	}{
		{"ErrBadStatus", func() error { return sim(Scenario{Name: ScenarioIdPError}, testNow) }, ReasonIdPStatus},
		{"Destination", func() error { return sim(Scenario{Name: ScenarioWrongDestination}, testNow) }, ReasonDestinationMismatch},
		{"response IssueInstant expired", func() error { return sim(Scenario{}, testNow.Add(2*time.Hour)) }, ReasonExpired},
		{"response Issuer", func() error {
			return crafted(func(c *craft) { c.ResponseIssuer = "https://evil.example.com" }, "_assert1")
		}, ReasonIssuerMismatch},
		{"assertion expired on", func() error {
			return crafted(func(c *craft) { c.AssertionIssueInstant = ts(testNow.Add(-2 * time.Hour)) }, "_assert1")
		}, ReasonExpired},
		{"assertion issuer is not", func() error {
			return crafted(func(c *craft) { c.Issuer = "https://evil.example.com" }, "_assert1")
		}, ReasonIssuerMismatch},
		{"SubjectConfirmation request IDs", func() error {
			return crafted(func(c *craft) { c.SCDInResponseTo = "req-other" }, "_assert1")
		}, ReasonInResponseToMismatch},
		{"Recipient", func() error { return sim(Scenario{Name: ScenarioWrongRecipient}, testNow) }, ReasonRecipientMismatch},
		{"SubjectConfirmationData expired", func() error {
			return crafted(func(c *craft) { c.SCDNotOnOrAfter = ts(testNow.Add(-11 * time.Minute)) }, "_assert1")
		}, ReasonExpired},
		{"Conditions not yet valid", func() error {
			return crafted(func(c *craft) { c.NotBefore = ts(testNow.Add(11 * time.Minute)) }, "_assert1")
		}, ReasonNotYetValid},
		{"Conditions expired", func() error {
			return crafted(func(c *craft) { c.NotOnOrAfter = ts(testNow.Add(-11 * time.Minute)) }, "_assert1")
		}, ReasonExpired},
		{"audience hook", func() error { return crafted(func(c *craft) { c.Audiences = nil }, "_assert1") }, ReasonAudienceMismatch},
		{"signature element not present", func() error { return sim(Scenario{Name: ScenarioUnsigned}, testNow) }, ReasonSignatureMissing},
		{"verifier: signature invalid", func() error { return sim(Scenario{Name: ScenarioWrongSignature}, testNow) }, ReasonSignatureInvalid},
		{"verifier: sha1", func() error { return sim(Scenario{Name: ScenarioSHA1}, testNow) }, ReasonInsecureAlgorithm},
		{"failed to decrypt", func() error {
			other := testCert(t, readKey(t, "sp-b"), "sp-b", certFrom, certTo)
			return sim(Scenario{Encrypt: EncryptAES256CBC, EncryptTo: other, Sign: SignAssertion}, testNow)
		}, ReasonDecryptionFailed},
		{"no valid assertion", func() error { return crafted(func(c *craft) { c.NoAssertion = true }, "_resp1") }, ReasonAssertionMissing},
		{"response InResponseTo hook", func() error { return crafted(func(c *craft) { c.InResponseTo = "req-other" }, "_assert1") }, ReasonInResponseToMismatch},
		// Unreachable through our hooks in v0.5.1; crewjam's literal text.
		{"literal InResponseTo", func() error {
			return literal("`InResponseTo` does not match any of the possible request IDs (expected [x])")
		}, ReasonInResponseToMismatch},
		{"literal AudienceRestriction", func() error {
			return literal(`assertion Conditions AudienceRestriction does not contain "x"`)
		}, ReasonAudienceMismatch},
		{"literal traversal limit", func() error {
			return literal("cannot validate signature on Response: traversal limit reached")
		}, ReasonTooLarge},
		{"literal cert expired", func() error {
			return literal("cannot validate signature on Response: Cert is not valid at this time")
		}, ReasonUntrustedCertificate},
		{"literal untrusted cert", func() error {
			return literal("cannot validate signature on Response: Could not verify certificate against trusted certs")
		}, ReasonUntrustedCertificate},
		{"literal signature", func() error {
			return literal("cannot validate signature on Assertion: Signature could not be verified")
		}, ReasonSignatureInvalid},
		{"unknown", func() error { return literal("invalid xml: something new") }, ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			wantReason(t, err, tc.want)
		})
	}
}
