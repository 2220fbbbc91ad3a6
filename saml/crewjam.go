package saml

import (
	"errors"
	"fmt"
	"strings"

	crewsaml "github.com/crewjam/saml"
)

// parseWithCrewjam runs crewjam's ParseXMLResponse (never ParseResponse,
// which would follow SAMLart to an artifact resolution service) on a
// per-call copy of the SP, with our hooks:
//
//   - SignatureVerifier: v (see verify.go);
//   - ValidateRequestID: our InResponseTo rule, so that crewjam's
//     AllowIDPInitiated (which would drop every InResponseTo check) is
//     never needed;
//   - ValidateAudienceRestriction: requires at least one restriction
//     (crewjam accepts none). Membership is checked by checkAssertion on
//     the signed bytes, because crewjam's struct keeps only the last
//     Audience of each restriction.
//
// crewjam v0.5.1 dereferences Subject, Conditions and
// SubjectConfirmationData without nil checks; we check them structurally
// first and recover here as the second line (an encrypted assertion can
// only be inspected after crewjam decrypted it).
func (sp *ServiceProvider) parseWithCrewjam(doc []byte, requestID string, v *verifier) (a *crewsaml.Assertion, err error) {
	crew := sp.crew
	crew.SignatureVerifier = v
	crew.ValidateRequestID = func(r crewsaml.Response, _ []string) error {
		if err := sp.checkInResponseTo(r.InResponseTo, requestID, "response"); err != nil {
			return err
		}
		return nil
	}
	crew.ValidateAudienceRestriction = func(a *crewsaml.Assertion) error {
		if a.Conditions == nil || len(a.Conditions.AudienceRestrictions) == 0 {
			return reject(ReasonAudienceMismatch, "assertion has no AudienceRestriction; it must name %s", q(sp.entityID))
		}
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, diagnosePanic(doc, r)
		}
	}()
	return crew.ParseXMLResponse(doc, []string{requestID}, crew.AcsURL)
}

// diagnosePanic names the cause of a crewjam panic. v0.5.1 has two known
// nil dereferences: an assertion without Subject, Conditions or
// SubjectConfirmationData (validateAssertion), and a signed element past
// goxmldsig's traversal budget (validateSignature formats el.Tag after
// NSDetatch returned nil). The pre-scan stops both for plaintext
// responses; this covers what only shows after decryption.
func diagnosePanic(doc []byte, r any) *RejectError {
	if res, err := scanDocument(doc, rootResponse); err == nil {
		switch {
		case res.Response.Signed && res.Response.Elements > dsigTraversalLimit:
			return tooManyElements("response", res.Response.Elements)
		case res.Assertion != nil && res.Assertion.Elements > dsigTraversalLimit:
			return tooManyElements("assertion", res.Assertion.Elements)
		}
	}
	return reject(ReasonMalformed, "assertion lacks a required element (Subject, Conditions or SubjectConfirmationData); the SAML library panicked: %v", r)
}

// crewjamReason maps an error from crewjam's ParseXMLResponse to a
// RejectError. It is the only place that reads crewjam's error text. Our
// own hooks' RejectErrors (and the verifier's, which may be wrapped by
// crewjam with %v and lose their type) take precedence.
func crewjamReason(err error, v *verifier) *RejectError {
	var rerr *RejectError
	if errors.As(err, &rerr) {
		return rerr
	}
	if v != nil && v.err != nil {
		return v.err
	}
	cause := err
	var ire *crewsaml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		cause = ire.PrivateErr
		if errors.As(cause, &rerr) {
			return rerr
		}
	}
	var bad crewsaml.ErrBadStatus
	if errors.As(cause, &bad) {
		return rejectWrap(ReasonIdPStatus, cause, "IdP returned status %s", q(bad.Status))
	}
	msg := cause.Error()
	for _, m := range crewjamMessages {
		if strings.Contains(msg, m.substr) {
			return rejectWrap(m.reason, cause, "%s (SAML library: %s)", m.detail, q(msg))
		}
	}
	return rejectWrap(ReasonMalformed, cause, "rejected by the SAML library: %s", q(msg))
}

// crewjamMessages lists crewjam v0.5.1 (service_provider.go) and goxmldsig
// v1.6.1 error texts, most specific first.
var crewjamMessages = []struct {
	substr string
	reason Reason
	detail string
}{
	{"traversal limit reached", ReasonTooLarge, fmt.Sprintf("a signed element has more than %d XML elements, the XML signature library's limit; reduce group claims at the IdP", dsigTraversalLimit)},
	{"failed to decrypt EncryptedAssertion", ReasonDecryptionFailed, "EncryptedAssertion could not be decrypted with the connection's SP key"},
	{"Cert is not valid at this time", ReasonUntrustedCertificate, "the IdP certificate is outside its validity period"},
	{"Could not verify certificate against trusted certs", ReasonUntrustedCertificate, "the response is signed with a certificate that is not configured"},
	{"signature element not present", ReasonSignatureMissing, "the assertion is not signed, and neither is the Response"},
	{"cannot validate signature", ReasonSignatureInvalid, "signature does not verify"},
	{"`Destination` does not match", ReasonDestinationMismatch, "response Destination is not the ACS URL"},
	{"`InResponseTo` does not match", ReasonInResponseToMismatch, "response InResponseTo does not match the request"},
	{"response IssueInstant expired", ReasonExpired, "response IssueInstant is too old"},
	{"response Issuer does not match", ReasonIssuerMismatch, "response Issuer is not the IdP entity ID"},
	{"assertion SubjectConfirmation one of the possible request IDs", ReasonInResponseToMismatch, "SubjectConfirmationData InResponseTo does not match the request"},
	{"assertion SubjectConfirmation Recipient is not", ReasonRecipientMismatch, "SubjectConfirmationData Recipient is not the ACS URL"},
	{"assertion SubjectConfirmationData is expired", ReasonExpired, "SubjectConfirmationData NotOnOrAfter has passed"},
	{"assertion Conditions is not yet valid", ReasonNotYetValid, "assertion NotBefore is in the future"},
	{"assertion Conditions is expired", ReasonExpired, "assertion NotOnOrAfter has passed"},
	{"AudienceRestriction does not contain", ReasonAudienceMismatch, "AudienceRestriction does not name this SP"},
	{"audience restriction validation failed", ReasonAudienceMismatch, "audience check failed"},
	{"expired on ", ReasonExpired, "assertion IssueInstant is too old"},
	{"issuer is not", ReasonIssuerMismatch, "assertion Issuer is not the IdP entity ID"},
	{"expected at least one valid Assertion", ReasonAssertionMissing, "response carries no assertion"},
}
