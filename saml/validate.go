package saml

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// ReplayCache remembers accepted assertion IDs. The broker implements it on
// the store so that every replica shares it.
type ReplayCache interface {
	// AcceptOnce records assertionID for connectionID until expiresAt. It
	// returns an error wrapping tenants.ErrAlreadyExists if the ID is
	// already recorded.
	AcceptOnce(ctx context.Context, connectionID, assertionID string, expiresAt time.Time) error
}

// ValidateResponse validates a decoded SAML Response completely and maps
// its assertion to a Profile. requestID is the AuthnRequest ID the broker
// stored with the login; "" only when the connection allows IdP-initiated
// SSO and the response is unsolicited. The assertion ID is recorded in
// replay as the very last step, so only a fully valid assertion is ever
// consumed.
//
// A rejection is a *RejectError; any other error (a failing replay store,
// a cancelled context) is internal.
func (sp *ServiceProvider) ValidateResponse(ctx context.Context, xml []byte, requestID string, replay ReplayCache) (tenants.Profile, error) {
	if replay == nil {
		return tenants.Profile{}, errNilReplay
	}
	if err := ctx.Err(); err != nil {
		return tenants.Profile{}, err
	}
	now := sp.opts.Clock.Now()
	a, keepUntil, rerr := sp.validate(xml, requestID, now)
	if rerr != nil {
		return tenants.Profile{}, rerr
	}
	p := mapProfile(sp.conn.Preset, sp.conn.AttributeMapping, strings.TrimSpace(a.NameID), a.NameIDFormat, a.Attributes)
	if rerr := subjectMissing(p, a, sp.conn.AttributeMapping); rerr != nil {
		return tenants.Profile{}, rerr
	}
	p.Issuer = strings.TrimSpace(a.Issuer)
	p.AssertionID = a.ID
	p.SessionIndex = a.SessionIndex
	p.AuthnInstant = a.AuthnInstant
	p.AuthnContext = strings.TrimSpace(a.AuthnContext)

	// Replay (SAML profiles 4.1.4.5): a bearer assertion is usable once.
	if err := replay.AcceptOnce(ctx, sp.conn.ID, a.ID, keepUntil); err != nil {
		if errors.Is(err, tenants.ErrAlreadyExists) {
			return tenants.Profile{}, rejectWrap(ReasonReplayed, err, "assertion %s was already used", q(a.ID))
		}
		return tenants.Profile{}, fmt.Errorf("saml: connection %s: recording assertion %s: %w", sp.conn.ID, a.ID, err)
	}
	return p, nil
}

// validate is the pipeline drawn in doc.go. It returns the facts of the
// verified assertion and how long its ID must be remembered.
func (sp *ServiceProvider) validate(doc []byte, requestID string, now time.Time) (*assertionFacts, time.Time, *RejectError) {
	var none time.Time
	// 1. Bound the input before any parsing.
	if len(doc) > sp.opts.MaxResponseBytes {
		return nil, none, reject(ReasonTooLarge, "response is %d bytes; the limit is %d", len(doc), sp.opts.MaxResponseBytes)
	}
	// 2. One streaming pass: no DTD, bounded depth and size, structure.
	res, err := scanDocument(doc, rootResponse)
	if err != nil {
		return nil, none, asReject(err)
	}
	if rerr := res.structureError(); rerr != nil {
		return nil, none, rerr
	}
	if rerr := checkStatus(&res.Response); rerr != nil {
		return nil, none, rerr
	}
	if res.Assertions == 0 {
		return nil, none, reject(ReasonAssertionMissing, "Success response carries no assertion")
	}
	if rerr := sp.precheck(res, requestID, now); rerr != nil {
		return nil, none, rerr
	}

	return sp.verify(doc, requestID, now)
}

// verify is the second half of the pipeline: crewjam (XML round-trip
// validation, signatures through our verifier, decryption, its own checks
// as a second fence), then our checks on the bytes a signature covered.
// Tests call it directly to show that it stands on its own when the
// pre-scan is taken away.
func (sp *ServiceProvider) verify(doc []byte, requestID string, now time.Time) (*assertionFacts, time.Time, *RejectError) {
	var none time.Time
	v := newVerifier(sp, now)
	crewAssertion, err := sp.parseWithCrewjam(doc, requestID, v)
	if err != nil {
		return nil, none, crewjamReason(err, v)
	}
	a, rerr := sp.verifiedAssertion(v, requestID, now)
	if rerr != nil {
		return nil, none, rerr
	}
	if crewAssertion == nil || crewAssertion.ID != a.ID {
		return nil, none, reject(ReasonSignatureInvalid, "the SAML library returned an assertion other than the signed one (signature wrapping)")
	}
	keepUntil, rerr := sp.checkAssertion(a, requestID, now)
	if rerr != nil {
		return nil, none, rerr
	}
	return a, keepUntil, nil
}

// precheck runs our explicit checks on the pre-scan, before any
// cryptography, so that the reason names the actual problem.
func (sp *ServiceProvider) precheck(res *scanResult, requestID string, now time.Time) *RejectError {
	if rerr := checkAlgorithms(res.SignatureMethods, res.DigestMethods, sp.conn.Policy.AllowSHA1); rerr != nil {
		return rerr
	}
	if rerr := checkEncryptionAlgorithms(res.EncryptionMethods); rerr != nil {
		return rerr
	}
	// SAML core 5.2: the assertion must be signed, or the Response around
	// it. An encrypted assertion's own signature is only visible after
	// decryption; crewjam enforces it then.
	if !res.Response.Signed && !res.Encrypted && !res.Assertion.Signed {
		return reject(ReasonSignatureMissing, "neither the Response nor the Assertion is signed")
	}
	// goxmldsig v1.6.1 gives up on signed elements over ~1000 elements.
	switch {
	case res.Response.Signed && res.Response.Elements > dsigTraversalLimit:
		return tooManyElements("response", res.Response.Elements)
	case !res.Response.Signed && res.Assertion != nil && res.Assertion.Elements > dsigTraversalLimit:
		return tooManyElements("assertion", res.Assertion.Elements)
	}
	if rerr := sp.checkResponse(&res.Response, requestID, now); rerr != nil {
		return rerr
	}
	if res.Assertion != nil {
		if _, rerr := sp.checkAssertion(res.Assertion, requestID, now); rerr != nil {
			return rerr
		}
	}
	return nil
}

func tooManyElements(what string, n int) *RejectError {
	return reject(ReasonTooLarge, "signed %s has %d elements; the XML signature library accepts about %d; reduce group claims at the IdP (e.g. Entra group filtering, an Okta group filter)", what, n, dsigTraversalLimit)
}

// verifiedAssertion returns the facts of the assertion as the signature
// covers it: from the verified Response (decrypting its EncryptedAssertion
// ourselves when needed) or from the verified Assertion. The scan repeats
// every structural rule on these bytes.
func (sp *ServiceProvider) verifiedAssertion(v *verifier, requestID string, now time.Time) (*assertionFacts, *RejectError) {
	if len(v.verified) != 1 {
		return nil, reject(ReasonSignatureInvalid, "expected exactly one verified signature, got %d", len(v.verified))
	}
	el := v.verified[0]
	switch {
	case el.Tag == "Response" && el.NamespaceURI() == nsProtocol:
		res, err := scanDocument(elementBytes(el), rootResponse)
		if err != nil {
			return nil, asReject(err)
		}
		if rerr := res.structureError(); rerr != nil {
			return nil, rerr
		}
		// The enveloped transform removed the Signature; it was there.
		res.Response.Signed = true
		if rerr := checkStatus(&res.Response); rerr != nil {
			return nil, rerr
		}
		if rerr := sp.checkResponse(&res.Response, requestID, now); rerr != nil {
			return nil, rerr
		}
		if res.Assertions != 1 {
			return nil, reject(ReasonAssertionMissing, "the signed Response carries %d assertions", res.Assertions)
		}
		if !res.Encrypted {
			return res.Assertion, nil
		}
		enc := firstChild(el, nsAssertion, "EncryptedAssertion")
		if enc == nil {
			return nil, reject(ReasonMalformed, "EncryptedAssertion not found in the signed Response")
		}
		plain, err := sp.decryptAssertion(enc)
		if err != nil {
			return nil, rejectWrap(ReasonDecryptionFailed, err, "EncryptedAssertion: %v", err)
		}
		return scanAssertion(plain)
	case el.Tag == "Assertion" && el.NamespaceURI() == nsAssertion:
		return scanAssertion(elementBytes(el))
	default:
		return nil, reject(ReasonSignatureInvalid, "signature covers <%s>, not a Response or Assertion", el.Tag)
	}
}

func scanAssertion(b []byte) (*assertionFacts, *RejectError) {
	res, err := scanDocument(b, rootAssertion)
	if err != nil {
		return nil, asReject(err)
	}
	if rerr := res.structureError(); rerr != nil {
		return nil, rerr
	}
	return res.Assertion, nil
}

func asReject(err error) *RejectError {
	var rerr *RejectError
	if errors.As(err, &rerr) {
		return rerr
	}
	return rejectWrap(ReasonMalformed, err, "%v", err)
}
