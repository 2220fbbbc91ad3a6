package saml

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"

	"github.com/ssobroker/ssobroker/tenants"
)

// MaxMetadataBytes bounds IdP metadata, pasted or fetched.
const MaxMetadataBytes = 1 << 20

// maxIdPCertificates matches tenants.ValidateIdPConfig; checked while
// parsing so that a hostile document cannot make us parse thousands.
const maxIdPCertificates = 10

// Metadata returns the SP metadata for the IdP admin: the entity ID, the
// SP certificate for signing and for encryption, the one HTTP-POST ACS, the
// NameID format we ask for, AuthnRequestsSigned per the connection's
// policy and WantAssertionsSigned.
//
// It has no validUntil: admins upload it as a file, and an IdP that honours
// validUntil would start refusing the connection when it passes. It is
// deterministic for a given connection and BaseURL.
func (sp *ServiceProvider) Metadata() ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", nsMetadata)
	ed.CreateAttr("xmlns:ds", nsDSig)
	ed.CreateAttr("entityID", sp.entityID)

	sso := ed.CreateElement("md:SPSSODescriptor")
	sso.CreateAttr("AuthnRequestsSigned", strconv.FormatBool(sp.conn.Policy.SignAuthnRequests))
	sso.CreateAttr("WantAssertionsSigned", "true")
	sso.CreateAttr("protocolSupportEnumeration", nsProtocol)

	certB64 := base64.StdEncoding.EncodeToString(sp.cert.Raw)
	for _, use := range []string{"signing", "encryption"} {
		kd := sso.CreateElement("md:KeyDescriptor")
		kd.CreateAttr("use", use)
		kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(certB64)
		if use == "encryption" {
			// What crewjam can decrypt, strongest first. No RSA-1.5 and
			// no 3DES: we refuse those (checkEncryptionAlgorithms).
			for _, alg := range []string{
				"http://www.w3.org/2009/xmlenc11#aes128-gcm",
				"http://www.w3.org/2001/04/xmlenc#aes256-cbc",
				"http://www.w3.org/2001/04/xmlenc#aes192-cbc",
				"http://www.w3.org/2001/04/xmlenc#aes128-cbc",
				"http://www.w3.org/2009/xmlenc11#rsa-oaep",
				"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
			} {
				kd.CreateElement("md:EncryptionMethod").CreateAttr("Algorithm", alg)
			}
		}
	}
	sso.CreateElement("md:NameIDFormat").SetText(sp.nameIDFmt)
	acs := sso.CreateElement("md:AssertionConsumerService")
	acs.CreateAttr("Binding", crewsaml.HTTPPostBinding)
	acs.CreateAttr("Location", sp.acsURL)
	acs.CreateAttr("index", "0")
	acs.CreateAttr("isDefault", "true")

	doc.Indent(2)
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("saml: SP metadata of %s: %w", sp.conn.ID, err)
	}
	return b, nil
}

// Metadata documents, just the parts we read.
type mdEntities struct {
	Entities []mdEntity   `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	Nested   []mdEntities `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntitiesDescriptor"`
}

type mdEntity struct {
	EntityID string  `xml:"entityID,attr"`
	IdPs     []mdIdP `xml:"urn:oasis:names:tc:SAML:2.0:metadata IDPSSODescriptor"`
	SPs      []mdSP  `xml:"urn:oasis:names:tc:SAML:2.0:metadata SPSSODescriptor"`
}

type mdIdP struct {
	Protocols string       `xml:"protocolSupportEnumeration,attr"`
	Keys      []mdKey      `xml:"urn:oasis:names:tc:SAML:2.0:metadata KeyDescriptor"`
	SSO       []mdEndpoint `xml:"urn:oasis:names:tc:SAML:2.0:metadata SingleSignOnService"`
}

type mdSP struct {
	AuthnRequestsSigned string       `xml:"AuthnRequestsSigned,attr"`
	Keys                []mdKey      `xml:"urn:oasis:names:tc:SAML:2.0:metadata KeyDescriptor"`
	ACS                 []mdEndpoint `xml:"urn:oasis:names:tc:SAML:2.0:metadata AssertionConsumerService"`
}

type mdKey struct {
	Use     string `xml:"use,attr"`
	KeyInfo struct {
		X509Data []struct {
			Certs []string `xml:"http://www.w3.org/2000/09/xmldsig# X509Certificate"`
		} `xml:"http://www.w3.org/2000/09/xmldsig# X509Data"`
	} `xml:"http://www.w3.org/2000/09/xmldsig# KeyInfo"`
}

type mdEndpoint struct {
	Binding  string `xml:"Binding,attr"`
	Location string `xml:"Location,attr"`
}

// parseMetadataEntities reads an EntityDescriptor or EntitiesDescriptor
// (nested ones flattened), bounded and without DTD.
func parseMetadataEntities(doc []byte) ([]mdEntity, error) {
	if len(doc) > MaxMetadataBytes {
		return nil, fmt.Errorf("metadata is %d bytes; the limit is %d", len(doc), MaxMetadataBytes)
	}
	res, err := scanDocument(doc, rootAny)
	if err != nil {
		return nil, err
	}
	switch res.Root {
	case qname{nsMetadata, "EntityDescriptor"}:
		var e mdEntity
		if err := xml.Unmarshal(doc, &e); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		return []mdEntity{e}, nil
	case qname{nsMetadata, "EntitiesDescriptor"}:
		var es mdEntities
		if err := xml.Unmarshal(doc, &es); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		var out []mdEntity
		var walk func(mdEntities)
		walk = func(e mdEntities) {
			out = append(out, e.Entities...)
			for _, n := range e.Nested {
				walk(n)
			}
		}
		walk(es)
		return out, nil
	default:
		return nil, fmt.Errorf("root element is {%s}%s, not a SAML metadata EntityDescriptor or EntitiesDescriptor", res.Root.space, res.Root.local)
	}
}

// ParseIdPMetadata reads IdP metadata: an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one IdP. It keeps every signing
// certificate (use "signing" or no use), so that a key rollover announced
// in the metadata does not break logins, the SSO URLs for HTTP-Redirect and
// HTTP-POST, and the entity ID, and checks the result with
// tenants.ValidateIdPConfig (https only, so no javascript: URL from a
// hostile document). The metadata signature is not verified: its trust
// comes from the admin who pasted it or the https URL it came from.
func ParseIdPMetadata(doc []byte) (tenants.IdPConfig, error) {
	entities, err := parseMetadataEntities(doc)
	if err != nil {
		return tenants.IdPConfig{}, fmt.Errorf("saml: IdP metadata: %w", err)
	}
	var idps []mdEntity
	for _, e := range entities {
		for _, d := range e.IdPs {
			if strings.Contains(d.Protocols, nsProtocol) {
				idps = append(idps, e)
				break
			}
		}
	}
	switch len(idps) {
	case 0:
		return tenants.IdPConfig{}, errors.New("saml: IdP metadata: no SAML 2.0 IDPSSODescriptor found")
	case 1:
	default:
		names := make([]string, 0, 5)
		for i, e := range idps {
			if i == 5 {
				names = append(names, "…")
				break
			}
			names = append(names, strconv.Quote(e.EntityID))
		}
		return tenants.IdPConfig{}, fmt.Errorf("saml: IdP metadata describes %d identity providers (%s); use the metadata of exactly one", len(idps), strings.Join(names, ", "))
	}
	e := idps[0]
	cfg := tenants.IdPConfig{EntityID: strings.TrimSpace(e.EntityID), MetadataXML: string(doc)}
	seen := map[string]bool{}
	for _, d := range e.IdPs {
		if !strings.Contains(d.Protocols, nsProtocol) {
			continue
		}
		for _, k := range d.Keys {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, xd := range k.KeyInfo.X509Data {
				for _, c := range xd.Certs {
					cert, err := parseBase64Cert(c)
					if err != nil {
						return tenants.IdPConfig{}, fmt.Errorf("saml: IdP metadata: signing certificate: %w", err)
					}
					if !seen[string(cert.Raw)] {
						seen[string(cert.Raw)] = true
						cfg.Certificates = append(cfg.Certificates, tenants.CertificatePEM(cert))
					}
					if len(cfg.Certificates) > maxIdPCertificates {
						return tenants.IdPConfig{}, fmt.Errorf("saml: IdP metadata has more than %d signing certificates", maxIdPCertificates)
					}
				}
			}
		}
		for _, s := range d.SSO {
			switch {
			case s.Binding == crewsaml.HTTPRedirectBinding && cfg.SSORedirectURL == "":
				cfg.SSORedirectURL = strings.TrimSpace(s.Location)
			case s.Binding == crewsaml.HTTPPostBinding && cfg.SSOPostURL == "":
				cfg.SSOPostURL = strings.TrimSpace(s.Location)
			}
		}
	}
	if err := tenants.ValidateIdPConfig(cfg); err != nil {
		return tenants.IdPConfig{}, fmt.Errorf("saml: IdP metadata of %q: %w", cfg.EntityID, err)
	}
	return cfg, nil
}

func parseBase64Cert(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, errors.New("not base64")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not an X.509 certificate: %w", err)
	}
	return c, nil
}
