// Package saml is everything SAML in ssobroker: one SAML 2.0 service
// provider per connection, built on crewjam/saml but never exposing its
// types; SP metadata; AuthnRequests for the HTTP-Redirect and HTTP-POST
// bindings; response validation; IdP metadata parsing and guarded
// fetching; attribute-mapping presets into a tenants.Profile; and an IdP
// simulator for development and tests.
//
// # Validating a response
//
// ValidateResponse treats the posted XML as hostile until a signature from
// one of the connection's own IdP certificates says otherwise, and then
// reads only the bytes that signature covers:
//
//	SAMLResponse form value
//	  │ DecodeResponse: length bound before decoding, base64       too_large, malformed
//	  ▼
//	XML bytes ── InResponseTo (same pre-scan) ──► broker finds the login → requestID
//	  │
//	  │ 1. size bound (Options.MaxResponseBytes)                       too_large
//	  │ 2. pre-scan: one encoding/xml RawToken pass, no tree           prescan.go
//	  │      DOCTYPE/entities refused, depth ≤ 64, ≤ 5000 elements     malformed, too_large
//	  │      exactly one Assertion|EncryptedAssertion anywhere         multiple_assertions
//	  │      directly under the root Response, no nested Response,
//	  │      unique IDs, Signatures only on Response/Assertion         malformed (XSW)
//	  │      Status = Success (codes and message for the operator)     idp_status
//	  │      algorithms: SHA-256+ unless allow_sha1; no RSA-1.5/3DES   insecure_algorithm
//	  │      some signature present                                    signature_missing
//	  │      signed element ≤ ~1000 elements (goxmldsig's budget)      too_large
//	  │ 3. our checks on the pre-scan (checks.go), so the reason       destination_mismatch,
//	  │    names the problem: Destination, Issuer, InResponseTo or     issuer_mismatch,
//	  │    unsolicited, IssueInstant age/future, Subject, bearer       in_response_to_mismatch,
//	  │    SubjectConfirmation (Recipient, InResponseTo, NotOnOrAfter),unsolicited, expired,
//	  │    Conditions, non-empty AudienceRestriction naming us         not_yet_valid, ...
//	  ▼
//	crewjam ParseXMLResponse on a per-call copy of the SP (crewjam.go)
//	  │    xml round-trip validator, etree, its own checks (a second
//	  │    fence, on the wall clock; crewtime.go), decryption with the  decryption_failed
//	  │    connection's SP key, recover() for its nil dereferences
//	  │    hooks: ValidateRequestID = our InResponseTo rule;
//	  │           ValidateAudienceRestriction = at least one;
//	  │           SignatureVerifier = verifier (verify.go):
//	  │             signature shape (one Reference = "#" + own ID,      signature_invalid
//	  │             no Object), algorithms, KeyInfo ignored for trust,  insecure_algorithm
//	  │             each configured certificate tried, validity at      untrusted_certificate
//	  │             Options.Clock, RSA ≥ 2048 bits
//	  │    errors it reports itself are mapped in crewjamReason
//	  ▼
//	verified bytes: goxmldsig's canonical output of the signed element
//	  │    (the Response, decrypting its EncryptedAssertion ourselves
//	  │    when needed, or the Assertion) scanned again with the same
//	  │    rules; crewjam's assertion must be that one                  signature_invalid (XSW)
//	  │ 4. our checks again, on the verified facts: they decide
//	  │ 5. MapProfile with the connection's preset and overrides;
//	  │    a usable, non-transient subject                              subject_missing
//	  │ 6. ReplayCache.AcceptOnce(assertion ID, until the latest
//	  │    NotOnOrAfter + skew), last, so only a valid assertion is     replayed
//	  │    ever consumed
//	  ▼
//	tenants.Profile
//
// Every rejection is a *RejectError whose Reason is one of the closed set
// in reject.go, for the audit log, and whose Detail is for the operator.
//
// Decisions worth knowing:
//   - A signature on the Response or on the Assertion is enough (Entra
//     signs only the assertion, Google and PingFederate often only the
//     response); the metadata still says WantAssertionsSigned.
//   - Destination must equal the ACS URL when present, and must be present
//     on a signed Response. It is not required on an unsigned Response,
//     where it would be attacker-controlled anyway; the signed
//     SubjectConfirmationData Recipient binds the assertion to our ACS.
//   - Comments and character references inside NameID or attribute values
//     cannot truncate them (CVE-2017-11427): exclusive c14n drops comments
//     before digesting, we read the text around them as one value, and we
//     read it from the bytes goxmldsig verified.
//   - A certificate in KeyInfo is only a hint for which configured
//     certificate to try first.
//   - crewjam's time settings are package globals. Our checks, with each
//     SP's Clock, ClockSkew and MaxResponseAge, come first and decide;
//     crewjam's are widened once to the largest allowed leeway and stay on
//     the wall clock (crewtime.go).
//
// # Other pieces
//
// NewAuthnRequest builds the request whose ID the broker stores with the
// login. ParseIdPMetadata and MetadataFetcher turn pasted or fetched IdP
// metadata into a tenants.IdPConfig (the fetcher refuses private, link-local
// and metadata-service addresses on the dialled IP). Cache keeps built
// service providers per connection version. Simulator is a real, small IdP
// with failure scenarios, used by the tests and by the broker's dev mode.
package saml
