package saml

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Reason is a machine-readable audit code for a rejected SAML response. The
// set is closed: the broker writes it into the login.failed audit event and
// operators filter on it, so a new value is an API change.
type Reason string

// The closed set of rejection reasons.
const (
	// ReasonSignatureMissing: neither the Response nor the Assertion carries
	// an XML signature (SAML core 5.2: an unsigned assertion proves nothing).
	ReasonSignatureMissing Reason = "signature_missing"
	// ReasonSignatureInvalid: a signature is present but does not verify
	// with any certificate configured for the connection, or it does not
	// cover the element whose data we would use (signature wrapping).
	ReasonSignatureInvalid Reason = "signature_invalid"
	// ReasonUntrustedCertificate: the response was signed with a
	// certificate that is not configured for this connection (typically an
	// IdP key rollover the connection has not picked up), or the configured
	// certificate is outside its validity period.
	ReasonUntrustedCertificate Reason = "untrusted_certificate"
	// ReasonInsecureAlgorithm: SHA-1 signature or digest without the
	// connection's allow_sha1 opt-in, an RSA signing key under 2048 bits
	// (also admitted by allow_sha1), or RSA-1.5 / 3DES encryption.
	ReasonInsecureAlgorithm Reason = "insecure_algorithm"
	// ReasonIssuerMismatch: Response or Assertion Issuer is not the
	// connection's IdP entity ID.
	ReasonIssuerMismatch Reason = "issuer_mismatch"
	// ReasonAudienceMismatch: no AudienceRestriction, or one that does not
	// name this SP's entity ID.
	ReasonAudienceMismatch Reason = "audience_mismatch"
	// ReasonRecipientMismatch: SubjectConfirmationData Recipient is not
	// this connection's ACS URL.
	ReasonRecipientMismatch Reason = "recipient_mismatch"
	// ReasonDestinationMismatch: Response Destination is not this
	// connection's ACS URL, or is missing on a signed Response.
	ReasonDestinationMismatch Reason = "destination_mismatch"
	// ReasonExpired: a NotOnOrAfter has passed or an IssueInstant is older
	// than the allowed response age (both with clock skew).
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: a NotBefore or IssueInstant lies in the future
	// beyond the allowed clock skew.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonInResponseToMismatch: InResponseTo does not name the request
	// this login sent, or names one when none was sent.
	ReasonInResponseToMismatch Reason = "in_response_to_mismatch"
	// ReasonUnsolicited: an IdP-initiated response at a connection that
	// does not allow them.
	ReasonUnsolicited Reason = "unsolicited"
	// ReasonReplayed: the assertion ID was already accepted once.
	ReasonReplayed Reason = "replayed"
	// ReasonIdPStatus: the IdP answered with a status other than Success;
	// Detail carries its status codes and message.
	ReasonIdPStatus Reason = "idp_status"
	// ReasonMalformed: not well-formed XML, a DTD, not a SAML Response,
	// a required element missing, duplicate IDs or elements in places a
	// signature-wrapping attack would put them.
	ReasonMalformed Reason = "malformed"
	// ReasonTooLarge: the response exceeds the size, element-count or XML
	// signature traversal bounds.
	ReasonTooLarge Reason = "too_large"
	// ReasonMultipleAssertions: more than one Assertion or
	// EncryptedAssertion anywhere in the response.
	ReasonMultipleAssertions Reason = "multiple_assertions"
	// ReasonAssertionMissing: a Success response without any assertion.
	ReasonAssertionMissing Reason = "assertion_missing"
	// ReasonSubjectMissing: no Subject, no usable subject identifier
	// (empty or transient NameID without a configured subject attribute),
	// or no bearer SubjectConfirmation with SubjectConfirmationData.
	ReasonSubjectMissing Reason = "subject_missing"
	// ReasonDecryptionFailed: an EncryptedAssertion could not be decrypted
	// with the connection's SP key.
	ReasonDecryptionFailed Reason = "decryption_failed"
)

// Reasons returns every Reason in a stable order, for documentation and
// validation.
func Reasons() []Reason {
	return []Reason{
		ReasonSignatureMissing, ReasonSignatureInvalid, ReasonUntrustedCertificate,
		ReasonInsecureAlgorithm, ReasonIssuerMismatch, ReasonAudienceMismatch,
		ReasonRecipientMismatch, ReasonDestinationMismatch, ReasonExpired,
		ReasonNotYetValid, ReasonInResponseToMismatch, ReasonUnsolicited,
		ReasonReplayed, ReasonIdPStatus, ReasonMalformed, ReasonTooLarge,
		ReasonMultipleAssertions, ReasonAssertionMissing, ReasonSubjectMissing,
		ReasonDecryptionFailed,
	}
}

// Valid reports whether r is one of the closed set.
func (r Reason) Valid() bool {
	for _, known := range Reasons() {
		if r == known {
			return true
		}
	}
	return false
}

// RejectError is the one error type for a rejected SAML message. Reason is
// for the audit log, Detail for the operator (it may name the issuer and the
// expected and received values, and the IdP's status message), Err is the
// underlying cause, if any. Detail never contains the raw XML, signature
// values or key material; values copied from the response are quoted and
// truncated so that they cannot forge log lines.
//
// The end user must never see Detail: show a fixed text per Reason class.
type RejectError struct {
	Reason Reason
	Detail string
	Err    error
}

func (e *RejectError) Error() string { return string(e.Reason) + ": " + e.Detail }

// Unwrap returns the underlying cause.
func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func rejectWrap(reason Reason, err error, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...), Err: err}
}

// maxQuoted bounds how much of an attacker-controlled value ends up in a
// Detail.
const maxQuoted = 200

// q quotes a value taken from a response for a Detail: Go-quoted (so a
// newline cannot start a fake log line) and truncated.
func q(s string) string {
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}
