package saml

import (
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// This file holds our own checks of a response's content. They run twice:
// on the pre-scan of the raw bytes, so that the audit reason comes from an
// explicit check of ours rather than from crewjam's error text, and on the
// bytes the signature covered, which is what the decision rests on.

// checkStatus surfaces a non-Success status for the operator (SAML core
// 3.2.2.2). The status is reported whether or not the Response is signed:
// an unsigned error response can only cause a failed login anyway.
func checkStatus(r *responseFacts) *RejectError {
	if !r.HasStatus {
		return reject(ReasonMalformed, "response has no Status")
	}
	if r.StatusCode == statusSuccess {
		return nil
	}
	d := "IdP returned status " + q(r.StatusCode)
	if r.SubStatusCode != "" {
		d += " / " + q(r.SubStatusCode)
	}
	if m := strings.TrimSpace(r.StatusMessage); m != "" {
		d += ": " + q(m)
	}
	if r.HasIssuer {
		d += " (issuer " + q(r.Issuer) + ")"
	}
	return &RejectError{Reason: ReasonIdPStatus, Detail: d}
}

// checkResponse checks the Response element: version, destination, issuer,
// request correlation and age.
func (sp *ServiceProvider) checkResponse(r *responseFacts, requestID string, now time.Time) *RejectError {
	if r.Version != "2.0" {
		return reject(ReasonMalformed, "response Version is %s, want \"2.0\"", q(r.Version))
	}
	if r.ID == "" {
		return reject(ReasonMalformed, "response has no ID")
	}
	// Destination binds the message to the endpoint it was sent to (SAML
	// bindings 3.5.5.2); a response meant for another SP, or for another
	// connection of this broker, is refused here. It is required when the
	// Response is signed (the spec says so, and only then does it prove
	// anything). On an unsigned Response it is attacker-controlled, so we
	// check it when present but do not require it: the signed
	// SubjectConfirmationData Recipient carries the binding then.
	switch {
	case r.HasDestination && r.Destination != sp.acsURL:
		return reject(ReasonDestinationMismatch, "response Destination is %s, want %s", q(r.Destination), q(sp.acsURL))
	case !r.HasDestination && r.Signed:
		return reject(ReasonDestinationMismatch, "signed response has no Destination, want %s", q(sp.acsURL))
	}
	if r.HasIssuer && strings.TrimSpace(r.Issuer) != sp.conn.IdP.EntityID {
		return reject(ReasonIssuerMismatch, "response Issuer is %s, want %s", q(r.Issuer), q(sp.conn.IdP.EntityID))
	}
	if err := sp.checkInResponseTo(r.InResponseTo, requestID, "response"); err != nil {
		return err
	}
	return sp.checkIssueInstant("response", r.IssueInstant, now)
}

// checkInResponseTo ties a response to the AuthnRequest this login sent, so
// that a response captured from another login (or sent unsolicited by an
// attacker's IdP session) cannot finish this one. requestID "" means the
// broker has no outstanding request: only a truly unsolicited response, on
// a connection that allows IdP-initiated SSO, passes.
func (sp *ServiceProvider) checkInResponseTo(got, requestID, where string) *RejectError {
	switch {
	case requestID == "" && got != "":
		return reject(ReasonInResponseToMismatch, "%s answers request %s, but this login has no outstanding request", where, q(got))
	case requestID == "" && !sp.conn.Policy.AllowIdPInitiated:
		return reject(ReasonUnsolicited, "unsolicited (IdP-initiated) response, and connection %s does not allow IdP-initiated SSO", sp.conn.ID)
	case requestID != "" && got != requestID:
		if got == "" {
			return reject(ReasonInResponseToMismatch, "%s has no InResponseTo, want %s", where, q(requestID))
		}
		return reject(ReasonInResponseToMismatch, "%s InResponseTo is %s, want %s", where, q(got), q(requestID))
	}
	return nil
}

func (sp *ServiceProvider) checkIssueInstant(what string, t, now time.Time) *RejectError {
	skew := sp.opts.ClockSkew
	switch {
	case t.IsZero():
		return reject(ReasonMalformed, "%s has no IssueInstant", what)
	case now.Sub(t) > sp.opts.MaxResponseAge+skew:
		return reject(ReasonExpired, "%s issued at %s, more than %s before %s", what, stamp(t), sp.opts.MaxResponseAge+skew, stamp(now))
	case t.Sub(now) > skew:
		return reject(ReasonNotYetValid, "%s issued at %s, in the future (now %s, skew %s)", what, stamp(t), stamp(now), skew)
	}
	return nil
}

// checkAssertion checks an assertion's issuer, subject confirmation,
// audience and validity window (SAML profiles 4.1.4.2-3). It returns the
// instant until which the assertion ID must be remembered for replay
// detection.
func (sp *ServiceProvider) checkAssertion(a *assertionFacts, requestID string, now time.Time) (keepUntil time.Time, _ *RejectError) {
	skew := sp.opts.ClockSkew
	if a.Version != "2.0" {
		return keepUntil, reject(ReasonMalformed, "assertion Version is %s, want \"2.0\"", q(a.Version))
	}
	if a.ID == "" {
		return keepUntil, reject(ReasonMalformed, "assertion has no ID")
	}
	if strings.TrimSpace(a.Issuer) != sp.conn.IdP.EntityID {
		if !a.HasIssuer {
			return keepUntil, reject(ReasonIssuerMismatch, "assertion has no Issuer, want %s", q(sp.conn.IdP.EntityID))
		}
		return keepUntil, reject(ReasonIssuerMismatch, "assertion Issuer is %s, want %s", q(a.Issuer), q(sp.conn.IdP.EntityID))
	}
	if err := sp.checkIssueInstant("assertion", a.IssueInstant, now); err != nil {
		return keepUntil, err
	}
	if !a.HasSubject {
		return keepUntil, reject(ReasonSubjectMissing, "assertion has no Subject")
	}

	// Every SubjectConfirmation must name this ACS and this request (as
	// crewjam also insists), and at least one must be a bearer
	// confirmation with data: that is what makes a browser-posted
	// assertion usable by exactly one SP endpoint for a short time.
	bearer := false
	for _, c := range a.Confirmations {
		if !c.HasData {
			if c.Method == bearerMethod {
				return keepUntil, reject(ReasonSubjectMissing, "bearer SubjectConfirmation has no SubjectConfirmationData")
			}
			continue
		}
		if c.Recipient != sp.acsURL {
			return keepUntil, reject(ReasonRecipientMismatch, "SubjectConfirmationData Recipient is %s, want %s", q(c.Recipient), q(sp.acsURL))
		}
		if err := sp.checkInResponseTo(c.InResponseTo, requestID, "SubjectConfirmationData"); err != nil {
			return keepUntil, err
		}
		switch {
		case c.NotOnOrAfter.IsZero():
			return keepUntil, reject(ReasonMalformed, "SubjectConfirmationData has no NotOnOrAfter")
		case !now.Add(-skew).Before(c.NotOnOrAfter):
			return keepUntil, reject(ReasonExpired, "SubjectConfirmationData NotOnOrAfter %s has passed (now %s, skew %s)", stamp(c.NotOnOrAfter), stamp(now), skew)
		case !c.NotBefore.IsZero() && now.Add(skew).Before(c.NotBefore):
			return keepUntil, reject(ReasonNotYetValid, "SubjectConfirmationData NotBefore %s is in the future (now %s, skew %s)", stamp(c.NotBefore), stamp(now), skew)
		}
		if c.NotOnOrAfter.After(keepUntil) {
			keepUntil = c.NotOnOrAfter
		}
		if c.Method == bearerMethod {
			bearer = true
		}
	}
	if !bearer {
		return keepUntil, reject(ReasonSubjectMissing, "assertion has no bearer SubjectConfirmation")
	}

	if !a.HasConditions {
		return keepUntil, reject(ReasonMalformed, "assertion has no Conditions")
	}
	// The audience is what keeps an assertion issued to another SP (or to
	// another connection of this broker) from being replayed here. An
	// assertion without any AudienceRestriction is accepted by crewjam;
	// we require one, and every one present must name us (core 2.5.1.4).
	if len(a.Audiences) == 0 {
		return keepUntil, reject(ReasonAudienceMismatch, "assertion has no AudienceRestriction; it must name %s", q(sp.entityID))
	}
	for _, group := range a.Audiences {
		if !containsTrimmed(group, sp.entityID) {
			return keepUntil, reject(ReasonAudienceMismatch, "AudienceRestriction %s does not contain %s", quoteList(group), q(sp.entityID))
		}
	}
	switch {
	case !a.NotBefore.IsZero() && now.Add(skew).Before(a.NotBefore):
		return keepUntil, reject(ReasonNotYetValid, "assertion NotBefore %s is in the future (now %s, skew %s)", stamp(a.NotBefore), stamp(now), skew)
	case a.NotOnOrAfter.IsZero():
		// crewjam treats a missing NotOnOrAfter as expired; say why.
		return keepUntil, reject(ReasonMalformed, "assertion Conditions has no NotOnOrAfter")
	case !now.Add(-skew).Before(a.NotOnOrAfter):
		return keepUntil, reject(ReasonExpired, "assertion NotOnOrAfter %s has passed (now %s, skew %s)", stamp(a.NotOnOrAfter), stamp(now), skew)
	case !a.SessionNotOnOrAfter.IsZero() && !now.Add(-skew).Before(a.SessionNotOnOrAfter):
		return keepUntil, reject(ReasonExpired, "AuthnStatement SessionNotOnOrAfter %s has passed (now %s)", stamp(a.SessionNotOnOrAfter), stamp(now))
	}
	if a.NotOnOrAfter.After(keepUntil) {
		keepUntil = a.NotOnOrAfter
	}
	return keepUntil.Add(skew), nil
}

// checkAlgorithms enforces RSA-SHA256-or-stronger (SHA-1 is broken for
// collisions: SHAttered, 2017) unless the connection opted in.
func checkAlgorithms(signatureMethods, digestMethods []string, allowSHA1 bool) *RejectError {
	for _, m := range signatureMethods {
		strong, known := signatureMethodStrength[m]
		switch {
		case !known:
			return reject(ReasonInsecureAlgorithm, "signature method %s is not supported", q(m))
		case !strong && !allowSHA1:
			return reject(ReasonInsecureAlgorithm, "signature method %s uses SHA-1; the connection does not allow SHA-1", q(m))
		}
	}
	for _, m := range digestMethods {
		strong, known := digestMethodStrength[m]
		switch {
		case !known:
			return reject(ReasonInsecureAlgorithm, "digest method %s is not supported", q(m))
		case !strong && !allowSHA1:
			return reject(ReasonInsecureAlgorithm, "digest method %s is SHA-1; the connection does not allow SHA-1", q(m))
		}
	}
	return nil
}

// checkEncryptionAlgorithms refuses RSA PKCS#1 v1.5 key transport
// (Bleichenbacher padding oracles, "Bleichenbacher's attack strikes again:
// breaking PKCS#1 v1.5 in XML Encryption", 2012) and 3DES.
func checkEncryptionAlgorithms(methods []string) *RejectError {
	for _, m := range methods {
		switch m {
		case "http://www.w3.org/2001/04/xmlenc#rsa-1_5":
			return reject(ReasonInsecureAlgorithm, "assertion key is encrypted with RSA PKCS#1 v1.5; configure RSA-OAEP at the IdP")
		case "http://www.w3.org/2001/04/xmlenc#tripledes-cbc":
			return reject(ReasonInsecureAlgorithm, "assertion is encrypted with 3DES; configure AES at the IdP")
		}
	}
	return nil
}

// strong = true for SHA-256 and better.
var signatureMethodStrength = map[string]bool{
	"http://www.w3.org/2000/09/xmldsig#rsa-sha1":          false,
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":   true,
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384":   true,
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512":   true,
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1":   false,
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": true,
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": true,
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": true,
}

var digestMethodStrength = map[string]bool{
	"http://www.w3.org/2000/09/xmldsig#sha1":        false,
	"http://www.w3.org/2001/04/xmlenc#sha256":       true,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
	"http://www.w3.org/2001/04/xmlenc#sha512":       true,
}

func containsTrimmed(list []string, want string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == want {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	parts := make([]string, 0, len(list))
	for i, v := range list {
		if i == 5 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, q(v))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// subjectFrom is a small guard used after mapping: the profile must carry a
// stable subject.
func subjectMissing(p tenants.Profile, a *assertionFacts, mapping tenants.AttributeMapping) *RejectError {
	if p.Subject != "" {
		return nil
	}
	switch {
	case mapping.Subject != "":
		return reject(ReasonSubjectMissing, "the configured subject attribute %s is missing or empty", q(mapping.Subject))
	case a.HasNameID && a.NameIDFormat == transientNameIDFormat:
		return reject(ReasonSubjectMissing, "NameID is transient (a new value every login) and no stable subject attribute is present; configure a persistent or emailAddress NameID at the IdP, or set attribute_mapping.subject")
	default:
		return reject(ReasonSubjectMissing, "assertion has no NameID and no subject attribute")
	}
}
