package saml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// XML namespaces we look for.
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"
	nsXML       = "http://www.w3.org/XML/1998/namespace"
)

// Bounds of the pre-scan. A real response is a few dozen elements deep at
// most 8 and has well under a thousand elements; these bounds only exist so
// that no input makes the later tree-building stages do unbounded work.
const (
	maxXMLDepth    = 64
	maxXMLElements = 5000
	// dsigTraversalLimit is goxmldsig v1.6.1's node budget: NSDetatch
	// counts every element of the signed subtree and fails with "traversal
	// limit reached" past 1000 (GHSA-qhrp-hfff-vphr). We check it up front
	// to give the operator an explanation instead.
	dsigTraversalLimit = 1000
)

const (
	bearerMethod          = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	statusSuccess         = "urn:oasis:names:tc:SAML:2.0:status:Success"
	transientNameIDFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
)

type qname struct{ space, local string }

var (
	qResponse            = qname{nsProtocol, "Response"}
	qStatus              = qname{nsProtocol, "Status"}
	qStatusCode          = qname{nsProtocol, "StatusCode"}
	qStatusMessage       = qname{nsProtocol, "StatusMessage"}
	qAssertion           = qname{nsAssertion, "Assertion"}
	qEncryptedAssertion  = qname{nsAssertion, "EncryptedAssertion"}
	qIssuer              = qname{nsAssertion, "Issuer"}
	qSubject             = qname{nsAssertion, "Subject"}
	qNameID              = qname{nsAssertion, "NameID"}
	qSubjectConfirmation = qname{nsAssertion, "SubjectConfirmation"}
	qSubjectConfData     = qname{nsAssertion, "SubjectConfirmationData"}
	qConditions          = qname{nsAssertion, "Conditions"}
	qAudienceRestriction = qname{nsAssertion, "AudienceRestriction"}
	qAudience            = qname{nsAssertion, "Audience"}
	qAuthnStatement      = qname{nsAssertion, "AuthnStatement"}
	qAuthnContext        = qname{nsAssertion, "AuthnContext"}
	qAuthnContextClass   = qname{nsAssertion, "AuthnContextClassRef"}
	qAttributeStatement  = qname{nsAssertion, "AttributeStatement"}
	qAttribute           = qname{nsAssertion, "Attribute"}
	qAttributeValue      = qname{nsAssertion, "AttributeValue"}
	qSignature           = qname{nsDSig, "Signature"}
	qSignedInfo          = qname{nsDSig, "SignedInfo"}
	qSignatureMethod     = qname{nsDSig, "SignatureMethod"}
	qReference           = qname{nsDSig, "Reference"}
	qDigestMethod        = qname{nsDSig, "DigestMethod"}
	qEncryptionMethod    = qname{nsXMLEnc, "EncryptionMethod"}
)

// attribute is one SAML Attribute with its values as the IdP sent them.
type attribute struct {
	Name         string
	FriendlyName string
	Values       []string
}

// confirmation is one SubjectConfirmation with its data.
type confirmation struct {
	Method       string
	HasData      bool
	Recipient    string
	InResponseTo string
	NotBefore    time.Time
	NotOnOrAfter time.Time
}

// assertionFacts is everything our checks and the profile mapping read
// from an assertion. The same scanner fills it from the raw response (for
// early, cheap rejection) and from the bytes the XML signature covered (for
// the decision), so both see the same rules.
type assertionFacts struct {
	ID                  string
	Version             string
	IssueInstant        time.Time
	Issuer              string
	HasIssuer           bool
	Signed              bool
	HasSubject          bool
	HasNameID           bool
	NameID              string
	NameIDFormat        string
	Confirmations       []confirmation
	HasConditions       bool
	NotBefore           time.Time
	NotOnOrAfter        time.Time
	Audiences           [][]string
	AuthnInstant        time.Time
	SessionNotOnOrAfter time.Time
	SessionIndex        string
	AuthnContext        string
	Attributes          []attribute
	Elements            int
}

// responseFacts is what we read from the Response element itself.
type responseFacts struct {
	ID              string
	Version         string
	InResponseTo    string
	HasInResponseTo bool
	Destination     string
	HasDestination  bool
	IssueInstant    time.Time
	Issuer          string
	HasIssuer       bool
	Signed          bool
	HasStatus       bool
	StatusCode      string
	SubStatusCode   string
	StatusMessage   string
	Elements        int
}

// scanResult is the outcome of one pass over a document. Hard errors (not
// XML, DTD, too deep, too many elements, wrong root) end the scan at once;
// structural findings are collected and judged by structureError, so that
// callers that only need a field (InResponseTo) are not blocked by them.
type scanResult struct {
	Response   responseFacts
	Assertion  *assertionFacts // the plaintext assertion, if exactly one
	Assertions int             // Assertion + EncryptedAssertion elements anywhere
	Encrypted  bool
	Root       qname // the root element, for rootAny scans

	SignatureMethods  []string
	DigestMethods     []string
	EncryptionMethods []string

	duplicateID        string
	nestedResponse     bool
	misplacedAssertion bool
	straySignature     string
	repeated           string
	// misplaced names an element found where its required parent is not
	// (SubjectConfirmationData outside a Subject's SubjectConfirmation,
	// say): the document is malformed.
	misplaced string
	timeErr   error
}

type rootKind int

const (
	rootResponse rootKind = iota
	rootAssertion
	rootAny // bounds and DTD only (metadata, AuthnRequests)
)

type frame struct {
	raw  xml.Name // as written, to match the end tag
	name qname    // resolved
}

type nsBinding struct {
	prefix, uri string
	depth       int
}

type scanner struct {
	dec   *xml.Decoder
	want  rootKind
	res   *scanResult
	stack []frame
	ns    []nsBinding
	ids   map[string]struct{}
	count int

	a           *assertionFacts // assertion being filled
	aDepth      int             // depth of its element (0: none open)
	aStart      int             // element count when it opened
	aCounts     map[qname]int   // once-only children of the assertion
	respCounts  map[qname]int   // once-only children of the Response
	text        *string         // direct-text capture target
	textDepth   int
	val         *strings.Builder // AttributeValue direct text
	valNested   *strings.Builder // AttributeValue/NameID text
	hasValNamed bool
	valDepth    int
}

// scanDocument makes one streaming pass over b. It never builds a tree and
// never resolves entities: a DOCTYPE (and with it every entity declaration,
// the billion-laughs and XXE classes) is refused outright, and encoding/xml
// in strict mode rejects references to undeclared entities.
func scanDocument(b []byte, want rootKind) (*scanResult, error) {
	s := &scanner{
		dec:        xml.NewDecoder(bytes.NewReader(b)),
		want:       want,
		res:        &scanResult{},
		ids:        make(map[string]struct{}, 8),
		aCounts:    make(map[qname]int, 8),
		respCounts: make(map[qname]int, 4),
	}
	s.dec.Strict = true
	for {
		tok, err := s.dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, rejectWrap(ReasonMalformed, err, "not well-formed XML: %s", q(err.Error()))
		}
		switch t := tok.(type) {
		case xml.Directive:
			// <!DOCTYPE ...> and friends. SAML never needs a DTD; entity
			// expansion (billion laughs) and external entities (XXE) need one.
			return nil, reject(ReasonMalformed, "DTD not allowed")
		case xml.StartElement:
			if err := s.start(t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			if err := s.end(t); err != nil {
				return nil, err
			}
		case xml.CharData:
			if len(s.stack) == 0 {
				// Whitespace, and the byte order mark Windows tools (AD FS,
				// Entra metadata downloads) put first, are harmless.
				if len(bytes.TrimSpace(bytes.TrimPrefix(t, []byte("\uFEFF")))) != 0 {
					return nil, reject(ReasonMalformed, "text outside the root element")
				}
				continue
			}
			s.chardata(t)
		}
	}
	switch {
	case len(s.stack) != 0:
		return nil, reject(ReasonMalformed, "unexpected end of document inside <%s>", s.stack[len(s.stack)-1].name.local)
	case s.count == 0:
		return nil, reject(ReasonMalformed, "no root element")
	}
	s.res.Response.Elements = s.count
	return s.res, nil
}

func (s *scanner) lookup(prefix string) (string, bool) {
	if prefix == "xml" {
		return nsXML, true
	}
	for i := len(s.ns) - 1; i >= 0; i-- {
		if s.ns[i].prefix == prefix {
			return s.ns[i].uri, true
		}
	}
	return "", prefix == "" // no default namespace declared: empty namespace
}

func (s *scanner) start(t xml.StartElement) error {
	s.count++
	depth := len(s.stack) + 1
	if depth > maxXMLDepth {
		return reject(ReasonMalformed, "elements nested deeper than %d", maxXMLDepth)
	}
	if s.count > maxXMLElements {
		return reject(ReasonTooLarge, "more than %d XML elements", maxXMLElements)
	}
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "xmlns":
			s.ns = append(s.ns, nsBinding{a.Name.Local, a.Value, depth})
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			s.ns = append(s.ns, nsBinding{"", a.Value, depth})
		}
	}
	uri, ok := s.lookup(t.Name.Space)
	if !ok {
		return reject(ReasonMalformed, "undeclared namespace prefix %s", q(t.Name.Space))
	}
	name := qname{uri, t.Name.Local}
	var parent qname
	if depth > 1 {
		parent = s.stack[depth-2].name
	}
	s.stack = append(s.stack, frame{raw: t.Name, name: name})

	// XML signature wrapping relies on two elements answering to the same
	// ID; SAML IDs are unique per document.
	if id, ok := attr(t, "ID"); ok {
		if _, dup := s.ids[id]; dup && s.res.duplicateID == "" {
			s.res.duplicateID = id
		}
		s.ids[id] = struct{}{}
	}

	if depth == 1 {
		return s.root(t, name)
	}

	switch name {
	case qResponse:
		s.res.nestedResponse = true
	case qAssertion, qEncryptedAssertion:
		s.res.Assertions++
		if name == qEncryptedAssertion {
			s.res.Encrypted = true
		}
		if s.want != rootResponse || depth != 2 {
			s.res.misplacedAssertion = true
		} else if name == qAssertion && s.res.Assertions == 1 {
			s.openAssertion(t, depth)
		}
	case qSignature:
		switch {
		case depth == 2 && s.want == rootResponse:
			s.res.Response.Signed = true
			s.once(s.respCounts, name)
		case s.aDepth != 0 && depth == s.aDepth+1:
			s.a.Signed = true
			s.once(s.aCounts, name)
		default:
			if s.res.straySignature == "" {
				s.res.straySignature = "<" + parent.local + ">"
			}
		}
	case qSignatureMethod:
		if parent == qSignedInfo {
			s.res.SignatureMethods = append(s.res.SignatureMethods, attrOr(t, "Algorithm"))
		}
	case qDigestMethod:
		// Only digests of signature references: OAEP's DigestMethod inside
		// an EncryptionMethod is SHA-1 by design and harmless.
		if parent == qReference {
			s.res.DigestMethods = append(s.res.DigestMethods, attrOr(t, "Algorithm"))
		}
	case qEncryptionMethod:
		s.res.EncryptionMethods = append(s.res.EncryptionMethods, attrOr(t, "Algorithm"))
	}

	if s.want == rootResponse && depth == 2 {
		switch name {
		case qIssuer:
			s.once(s.respCounts, name)
			s.res.Response.HasIssuer = true
			s.capture(&s.res.Response.Issuer, depth)
		case qStatus:
			s.once(s.respCounts, name)
			s.res.Response.HasStatus = true
		}
	}
	if s.want == rootResponse && depth == 3 && parent == qStatus {
		switch name {
		case qStatusCode:
			s.res.Response.StatusCode = attrOr(t, "Value")
		case qStatusMessage:
			s.capture(&s.res.Response.StatusMessage, depth)
		}
	}
	if s.want == rootResponse && depth == 4 && parent == qStatusCode && name == qStatusCode && s.res.Response.SubStatusCode == "" {
		s.res.Response.SubStatusCode = attrOr(t, "Value")
	}
	if s.aDepth != 0 && depth > s.aDepth {
		s.inAssertion(t, name, parent, depth-s.aDepth, depth)
	}
	return nil
}

func (s *scanner) root(t xml.StartElement, name qname) error {
	switch {
	case s.want == rootResponse && name == qResponse:
		r := &s.res.Response
		r.ID = attrOr(t, "ID")
		r.Version = attrOr(t, "Version")
		r.InResponseTo, r.HasInResponseTo = attr(t, "InResponseTo")
		r.Destination, r.HasDestination = attr(t, "Destination")
		r.IssueInstant = s.time(t, "IssueInstant")
		return nil
	case s.want == rootAssertion && name == qAssertion:
		s.res.Assertions++
		s.openAssertion(t, 1)
		return nil
	case s.want == rootAny:
		s.res.Root = name
		return nil
	case s.want == rootResponse:
		return reject(ReasonMalformed, "root element is {%s}%s, not a SAML protocol Response", name.space, name.local)
	default:
		return reject(ReasonMalformed, "root element is {%s}%s, not a SAML Assertion", name.space, name.local)
	}
}

func (s *scanner) openAssertion(t xml.StartElement, depth int) {
	s.a = &assertionFacts{
		ID:           attrOr(t, "ID"),
		Version:      attrOr(t, "Version"),
		IssueInstant: s.time(t, "IssueInstant"),
	}
	s.aDepth, s.aStart = depth, s.count
	s.res.Assertion = s.a
}

// inAssertion records the parts of the assertion we check and map. rel is
// the depth below the Assertion element (1 = its children).
func (s *scanner) inAssertion(t xml.StartElement, name, parent qname, rel, depth int) {
	a := s.a
	switch {
	case rel == 1:
		switch name {
		case qIssuer:
			s.once(s.aCounts, name)
			a.HasIssuer = true
			s.capture(&a.Issuer, depth)
		case qSubject:
			s.once(s.aCounts, name)
			a.HasSubject = true
		case qConditions:
			s.once(s.aCounts, name)
			a.HasConditions = true
			a.NotBefore = s.time(t, "NotBefore")
			a.NotOnOrAfter = s.time(t, "NotOnOrAfter")
		case qAuthnStatement:
			if a.AuthnInstant.IsZero() {
				a.AuthnInstant = s.time(t, "AuthnInstant")
				a.SessionNotOnOrAfter = s.time(t, "SessionNotOnOrAfter")
				a.SessionIndex = attrOr(t, "SessionIndex")
			}
		}
	case rel == 2 && parent == qSubject:
		switch name {
		case qNameID:
			s.once(s.aCounts, name)
			a.HasNameID = true
			a.NameIDFormat = attrOr(t, "Format")
			s.capture(&a.NameID, depth)
		case qSubjectConfirmation:
			a.Confirmations = append(a.Confirmations, confirmation{Method: attrOr(t, "Method")})
		}
	case rel == 3 && parent == qSubjectConfirmation && name == qSubjectConfData:
		if len(a.Confirmations) == 0 {
			s.misplace(name)
			return
		}
		c := &a.Confirmations[len(a.Confirmations)-1]
		if c.HasData {
			s.repeat(name)
		}
		c.HasData = true
		c.Recipient = attrOr(t, "Recipient")
		c.InResponseTo = attrOr(t, "InResponseTo")
		c.NotBefore = s.time(t, "NotBefore")
		c.NotOnOrAfter = s.time(t, "NotOnOrAfter")
	case rel == 2 && parent == qConditions && name == qAudienceRestriction:
		a.Audiences = append(a.Audiences, []string{})
	case rel == 3 && parent == qAudienceRestriction && name == qAudience:
		if len(a.Audiences) == 0 {
			s.misplace(name)
			return
		}
		i := len(a.Audiences) - 1
		a.Audiences[i] = append(a.Audiences[i], "")
		s.capture(&a.Audiences[i][len(a.Audiences[i])-1], depth)
	case rel == 3 && parent == qAuthnContext && name == qAuthnContextClass && a.AuthnContext == "":
		s.capture(&a.AuthnContext, depth)
	case rel == 2 && parent == qAttributeStatement && name == qAttribute:
		a.Attributes = append(a.Attributes, attribute{Name: attrOr(t, "Name"), FriendlyName: attrOr(t, "FriendlyName"), Values: []string{}})
	case rel == 3 && parent == qAttribute && name == qAttributeValue:
		if len(a.Attributes) == 0 {
			s.misplace(name)
			return
		}
		s.val, s.valNested, s.hasValNamed, s.valDepth = &strings.Builder{}, &strings.Builder{}, false, depth
	case rel == 4 && parent == qAttributeValue && name == qNameID && s.val != nil:
		// eduPersonTargetedID and friends carry a NameID inside the value.
		s.hasValNamed = true
	}
}

func (s *scanner) chardata(t xml.CharData) {
	depth := len(s.stack)
	if s.text != nil && depth == s.textDepth {
		*s.text += string(t)
	}
	if s.val != nil {
		switch {
		case depth == s.valDepth:
			s.val.Write(t)
		case depth == s.valDepth+1 && s.hasValNamed:
			s.valNested.Write(t)
		}
	}
}

func (s *scanner) end(t xml.EndElement) error {
	depth := len(s.stack)
	if depth == 0 {
		return reject(ReasonMalformed, "unexpected end tag </%s>", t.Name.Local)
	}
	top := s.stack[depth-1]
	if top.raw != t.Name {
		return reject(ReasonMalformed, "end tag </%s> does not match <%s>", t.Name.Local, top.raw.Local)
	}
	if s.text != nil && depth == s.textDepth {
		s.text = nil
	}
	if s.val != nil && depth == s.valDepth {
		v := s.val.String()
		if s.hasValNamed && strings.TrimSpace(v) == "" {
			v = s.valNested.String()
		}
		at := &s.a.Attributes[len(s.a.Attributes)-1]
		at.Values = append(at.Values, v)
		s.val, s.valNested = nil, nil
	}
	if s.aDepth != 0 && depth == s.aDepth {
		s.a.Elements = s.count - s.aStart + 1
		s.aDepth = 0
	}
	for len(s.ns) > 0 && s.ns[len(s.ns)-1].depth == depth {
		s.ns = s.ns[:len(s.ns)-1]
	}
	s.stack = s.stack[:depth-1]
	return nil
}

func (s *scanner) capture(target *string, depth int) {
	*target = ""
	s.text, s.textDepth = target, depth
}

// once notes an element that SAML allows at most once in its parent; a
// second one is how encoding/xml's "last one wins" gets exploited.
func (s *scanner) once(counts map[qname]int, name qname) {
	counts[name]++
	if counts[name] > 1 {
		s.repeat(name)
	}
}

// misplace records an element outside its required parent. The parent
// checks above look one level up only; this catches the elements whose
// parent was itself in the wrong place (found by FuzzValidateResponse:
// a SubjectConfirmationData under a SubjectConfirmation that sat outside
// the Subject indexed an empty list).
func (s *scanner) misplace(name qname) {
	if s.res.misplaced == "" {
		s.res.misplaced = name.local
	}
}

func (s *scanner) repeat(name qname) {
	if s.res.repeated == "" {
		s.res.repeated = name.local
	}
}

func (s *scanner) time(t xml.StartElement, name string) time.Time {
	v, ok := attr(t, name)
	if !ok {
		return time.Time{}
	}
	tm, err := parseSAMLTime(v)
	if err != nil && s.res.timeErr == nil {
		s.res.timeErr = fmt.Errorf("%s %s is not a valid xs:dateTime", name, q(v))
	}
	return tm
}

// structureError judges the findings of a scan of a Response, in a fixed
// order so that each attack maps to one reason.
func (r *scanResult) structureError() *RejectError {
	switch {
	case r.Assertions > 1:
		// CVE-2022-41912 and most XSW variants: a second assertion for a
		// lenient parser to pick.
		return reject(ReasonMultipleAssertions, "response carries %d assertions; exactly one is allowed", r.Assertions)
	case r.nestedResponse:
		return reject(ReasonMalformed, "a Response nested inside the Response (signature wrapping)")
	case r.misplacedAssertion:
		return reject(ReasonMalformed, "the assertion is not a direct child of the Response (signature wrapping)")
	case r.duplicateID != "":
		return reject(ReasonMalformed, "ID %s appears on more than one element (signature wrapping)", q(r.duplicateID))
	case r.straySignature != "":
		return reject(ReasonMalformed, "a Signature inside %s; only the Response and the Assertion may be signed", r.straySignature)
	case r.repeated != "":
		return reject(ReasonMalformed, "element <%s> appears more than once", r.repeated)
	case r.misplaced != "":
		return reject(ReasonMalformed, "element <%s> is outside its required parent", r.misplaced)
	case r.timeErr != nil:
		return rejectWrap(ReasonMalformed, r.timeErr, "%s", r.timeErr.Error())
	}
	return nil
}

func attr(t xml.StartElement, local string) (string, bool) {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

func attrOr(t xml.StartElement, local string) string {
	v, _ := attr(t, local)
	return v
}

// parseSAMLTime accepts xs:dateTime as IdPs write it: RFC 3339 with or
// without fractional seconds, and (leniently, like crewjam) without a zone,
// which then means UTC.
func parseSAMLTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q", s)
}
