package saml

import (
	"encoding/base64"
	"strings"
)

// DecodeResponse decodes the SAMLResponse form value of the HTTP-POST
// binding: standard base64, tolerating the line breaks and spaces IdPs
// insert. The length is checked before anything is decoded or copied, so
// an oversized post costs nothing. maxBytes bounds the decoded XML;
// zero means DefaultMaxResponseBytes.
func DecodeResponse(samlResponseFormValue string, maxBytes int) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxResponseBytes
	}
	encodedMax := base64.StdEncoding.EncodedLen(maxBytes)
	// Allow one whitespace character per encoded one (CRLF every 64 or 76
	// characters is the common case) before even looking at the value.
	if len(samlResponseFormValue) > 2*encodedMax {
		return nil, reject(ReasonTooLarge, "SAMLResponse is %d characters; the decoded limit is %d bytes", len(samlResponseFormValue), maxBytes)
	}
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, samlResponseFormValue)
	if s == "" {
		return nil, reject(ReasonMalformed, "SAMLResponse is empty")
	}
	if len(s) > encodedMax {
		return nil, reject(ReasonTooLarge, "SAMLResponse decodes to more than %d bytes", maxBytes)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, rejectWrap(ReasonMalformed, err, "SAMLResponse is not valid base64: %v", err)
	}
	if len(b) > maxBytes {
		return nil, reject(ReasonTooLarge, "SAMLResponse decodes to %d bytes; the limit is %d", len(b), maxBytes)
	}
	return b, nil
}

// InResponseTo returns the ID of the AuthnRequest a response answers, so
// that the broker can find the login before full validation: the
// Response's InResponseTo, or, when the Response has none, the one on a
// plaintext assertion's SubjectConfirmationData. "" means unsolicited (or
// encrypted without a Response-level value).
//
// Nothing here is trusted yet: ValidateResponse checks the value against
// the stored request ID. The pre-parse refuses DTDs and is bounded by
// MaxResponseBytesLimit, the element count and the depth.
func InResponseTo(xml []byte) (string, error) {
	if len(xml) > MaxResponseBytesLimit {
		return "", reject(ReasonTooLarge, "response is %d bytes; the limit is %d", len(xml), MaxResponseBytesLimit)
	}
	res, err := scanDocument(xml, rootResponse)
	if err != nil {
		return "", err
	}
	if res.Response.InResponseTo != "" {
		return res.Response.InResponseTo, nil
	}
	if res.Assertions == 1 && res.Assertion != nil {
		for _, c := range res.Assertion.Confirmations {
			if c.InResponseTo != "" {
				return c.InResponseTo, nil
			}
		}
	}
	return "", nil
}
