package saml

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssobroker/ssobroker/tenants"
)

// SAML NameID formats.
const (
	nameIDPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	nameIDEmail       = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	nameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
)

// ServiceProvider is the SAML SP of one connection. It is immutable after
// construction and safe for concurrent use; build it once per connection
// version (see Cache).
type ServiceProvider struct {
	conn        tenants.Connection
	opts        Options
	entityID    string
	acsURL      string
	metadataURL string
	key         *rsa.PrivateKey
	cert        *x509.Certificate
	idpCerts    []*x509.Certificate // parsed once; the only keys we trust
	nameIDFmt   string
	// crew is a template: every call works on a copy with per-call hooks,
	// so nothing mutable is shared between concurrent validations.
	crew crewsaml.ServiceProvider
	// deflaters recycles the redirect binding's compressors.
	deflaters sync.Pool
}

// NewServiceProvider builds the SP of conn. Its entity ID is
// {BaseURL}/saml/{conn.ID}, its ACS {entity ID}/acs and its metadata
// {entity ID}/metadata.
func NewServiceProvider(conn tenants.Connection, opts Options) (*ServiceProvider, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if !validConnectionID(conn.ID) {
		return nil, fmt.Errorf("saml: connection ID %q is not a URL-safe id", conn.ID)
	}
	base := opts.BaseURL + "/saml/" + conn.ID
	return newServiceProvider(conn, opts, base, base+"/acs", base+"/metadata")
}

// newServiceProvider takes explicit SP URLs. NewServiceProvider derives them
// from the connection; tests use this to validate captured responses whose
// SP entity IDs and ACS URLs are arbitrary strings.
func newServiceProvider(conn tenants.Connection, opts Options, entityID, acsURL, metadataURL string) (*ServiceProvider, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	sp := &ServiceProvider{conn: conn, opts: opts, entityID: entityID, acsURL: acsURL, metadataURL: metadataURL}
	if strings.TrimSpace(conn.IdP.EntityID) == "" {
		return nil, fmt.Errorf("saml: connection %s: IdP entity ID is required", conn.ID)
	}
	seen := map[string]bool{}
	for i, c := range conn.IdP.Certificates {
		cert, err := tenants.ParseCertificate(c)
		if err != nil {
			return nil, fmt.Errorf("saml: connection %s: IdP certificate %d: %w", conn.ID, i, err)
		}
		if !seen[string(cert.Raw)] {
			seen[string(cert.Raw)] = true
			sp.idpCerts = append(sp.idpCerts, cert)
		}
	}
	if len(sp.idpCerts) == 0 {
		return nil, fmt.Errorf("saml: connection %s: at least one IdP signing certificate is required", conn.ID)
	}
	if sp.key, err = parseRSAPrivateKey(conn.SPKey); err != nil {
		return nil, fmt.Errorf("saml: connection %s: %w", conn.ID, err)
	}
	if sp.cert, err = tenants.ParseCertificate(conn.SPCertificate); err != nil {
		return nil, fmt.Errorf("saml: connection %s: SP certificate: %w", conn.ID, err)
	}
	if pub, ok := sp.cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&sp.key.PublicKey) {
		return nil, fmt.Errorf("saml: connection %s: SP certificate does not match the SP key", conn.ID)
	}
	sp.nameIDFmt = conn.Policy.NameIDFormat
	if sp.nameIDFmt == "" {
		sp.nameIDFmt = defaultNameIDFormat(conn.Preset)
	}

	acs, err := url.Parse(acsURL)
	if err != nil || acs.String() != acsURL {
		// crewjam compares Recipient with AcsURL.String(): the URL must
		// survive a parse/print round trip or crewjam would reject what
		// our own (exact) check accepts.
		return nil, fmt.Errorf("saml: ACS URL %q does not round-trip through net/url", acsURL)
	}
	md, err := url.Parse(metadataURL)
	if err != nil {
		return nil, fmt.Errorf("saml: metadata URL %q: %w", metadataURL, err)
	}
	sp.crew = crewsaml.ServiceProvider{
		EntityID:          entityID,
		Key:               sp.key,
		Certificate:       sp.cert,
		AcsURL:            *acs,
		MetadataURL:       *md,
		IDPMetadata:       idpDescriptor(conn.IdP.EntityID, sp.idpCerts),
		AuthnNameIDFormat: crewsaml.NameIDFormat(sp.nameIDFmt),
		// Never true: it would switch off crewjam's InResponseTo checks at
		// both levels. Unsolicited responses are decided by our own check.
		AllowIDPInitiated: false,
	}
	if conn.Policy.SignAuthnRequests {
		sp.crew.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	return sp, nil
}

// idpDescriptor builds the minimal IdP metadata crewjam insists on. crewjam
// parses these certificates again on every signature, only to hand them to
// our SignatureVerifier, which ignores them in favour of sp.idpCerts; we
// therefore give it just the first one (it needs at least one to get as far
// as the verifier).
func idpDescriptor(entityID string, certs []*x509.Certificate) *crewsaml.EntityDescriptor {
	kd := crewsaml.KeyDescriptor{Use: "signing"}
	kd.KeyInfo.X509Data.X509Certificates = []crewsaml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(certs[0].Raw)}}
	return &crewsaml.EntityDescriptor{
		EntityID: entityID,
		IDPSSODescriptors: []crewsaml.IDPSSODescriptor{{
			SSODescriptor: crewsaml.SSODescriptor{RoleDescriptor: crewsaml.RoleDescriptor{
				ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
				KeyDescriptors:             []crewsaml.KeyDescriptor{kd},
			}},
		}},
	}
}

// defaultNameIDFormat is the NameIDPolicy a preset asks for when the
// connection does not choose. Never transient (a new value per login cannot
// key an identity). Entra honours the requested format and its subject is
// the objectidentifier claim anyway, so we ask for persistent there; every
// other IdP gets emailAddress, which they all support and which doubles as
// the email when no email attribute is sent. An IdP that refuses the
// requested format can be set to unspecified per connection.
func defaultNameIDFormat(p tenants.Preset) string {
	if p == tenants.PresetEntra {
		return nameIDPersistent
	}
	return nameIDEmail
}

func validConnectionID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !urlSafe(id[i]) {
			return false
		}
	}
	return true
}

func urlSafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// Connection returns the connection the SP was built from.
func (sp *ServiceProvider) Connection() tenants.Connection { return sp.conn }

// EntityID is the SP entity ID, {BaseURL}/saml/{connection ID}: the
// Audience every assertion must name.
func (sp *ServiceProvider) EntityID() string { return sp.entityID }

// ACSURL is where the IdP posts responses: the only acceptable Recipient
// and Destination.
func (sp *ServiceProvider) ACSURL() string { return sp.acsURL }

// MetadataURL is where the SP metadata is served.
func (sp *ServiceProvider) MetadataURL() string { return sp.metadataURL }

// certIndex returns the configured IdP certificate equal to c, or -1.
func (sp *ServiceProvider) certIndex(c *x509.Certificate) int {
	for i, t := range sp.idpCerts {
		if bytes.Equal(t.Raw, c.Raw) {
			return i
		}
	}
	return -1
}

var errNilReplay = errors.New("saml: ValidateResponse needs a ReplayCache")
