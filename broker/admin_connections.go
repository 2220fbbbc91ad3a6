package broker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/tenants"
)

// metadataFetcher downloads IdP metadata (saml.MetadataFetcher: https only,
// bounded, SSRF-guarded).
type metadataFetcher interface {
	Fetch(ctx context.Context, url string) ([]byte, error)
}

// connectionAdmin serves the connection routes of the admin API. It also
// owns turning any of the three IdP sources (pasted metadata, metadata URL,
// manual fields) into one tenants.IdPConfig.
type connectionAdmin struct {
	dir             *tenants.Directory
	fetcher         metadataFetcher
	urls            spURLs
	clock           tenants.Clock
	random          io.Reader
	refreshInterval time.Duration
	certWarning     time.Duration
	recorder        *auditRecorder
}

// spURLs derives a connection's SP endpoints from the issuer, the one place
// outside package saml that knows the convention (saml.ServiceProvider has
// the same and the tests compare them).
type spURLs struct{ issuer string }

func (u spURLs) entityID(id string) string    { return u.issuer + "/saml/" + id }
func (u spURLs) acs(id string) string         { return u.issuer + "/saml/" + id + "/acs" }
func (u spURLs) metadataURL(id string) string { return u.issuer + "/saml/" + id + "/metadata" }

type certificateJSON struct {
	Subject           string    `json:"subject"`
	SHA256Fingerprint string    `json:"sha256_fingerprint"`
	NotBefore         time.Time `json:"not_before"`
	NotAfter          time.Time `json:"not_after"`
	Expired           bool      `json:"expired"`
	ExpiresSoon       bool      `json:"expires_soon"`
}

type connectionJSON struct {
	ID                    string                   `json:"id"`
	TenantID              string                   `json:"tenant_id"`
	Name                  string                   `json:"name"`
	Status                string                   `json:"status"`
	Preset                string                   `json:"preset"`
	SPEntityID            string                   `json:"sp_entity_id"`
	ACSURL                string                   `json:"acs_url"`
	SPMetadataURL         string                   `json:"sp_metadata_url"`
	SPCertificate         string                   `json:"sp_certificate"`
	IdPEntityID           string                   `json:"idp_entity_id"`
	IdPSSORedirectURL     string                   `json:"idp_sso_redirect_url,omitempty"`
	IdPSSOPostURL         string                   `json:"idp_sso_post_url,omitempty"`
	IdPCertificates       []certificateJSON        `json:"idp_certificates"`
	IdPMetadataURL        string                   `json:"idp_metadata_url,omitempty"`
	MetadataRefreshedAt   time.Time                `json:"metadata_refreshed_at,omitzero"`
	MetadataNextRefreshAt time.Time                `json:"metadata_next_refresh_at,omitzero"`
	MetadataLastError     string                   `json:"metadata_last_error,omitempty"`
	AttributeMapping      tenants.AttributeMapping `json:"attribute_mapping"`
	AllowIdPInitiated     bool                     `json:"allow_idp_initiated"`
	SignAuthnRequests     bool                     `json:"sign_authn_requests"`
	AllowSHA1             bool                     `json:"allow_sha1"`
	NameIDFormat          string                   `json:"name_id_format,omitempty"`
	RejectUnverifiedEmail bool                     `json:"reject_unverified_email"`
	// Warnings tell the operator what will break soon (expiring IdP
	// certificates, failing metadata refreshes) before users notice.
	Warnings  []string  `json:"warnings"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (ca *connectionAdmin) toJSON(c tenants.Connection) connectionJSON {
	out := connectionJSON{
		ID: c.ID, TenantID: c.TenantID, Name: c.Name, Status: string(c.Status), Preset: string(c.Preset),
		SPEntityID: ca.urls.entityID(c.ID), ACSURL: ca.urls.acs(c.ID), SPMetadataURL: ca.urls.metadataURL(c.ID),
		SPCertificate: c.SPCertificate, IdPEntityID: c.IdP.EntityID,
		IdPSSORedirectURL: c.IdP.SSORedirectURL, IdPSSOPostURL: c.IdP.SSOPostURL,
		IdPCertificates: []certificateJSON{}, IdPMetadataURL: c.Metadata.URL,
		MetadataRefreshedAt: c.Metadata.RefreshedAt, MetadataNextRefreshAt: c.Metadata.NextRefreshAt,
		MetadataLastError: c.Metadata.LastError, AttributeMapping: c.AttributeMapping,
		AllowIdPInitiated: c.Policy.AllowIdPInitiated, SignAuthnRequests: c.Policy.SignAuthnRequests,
		AllowSHA1: c.Policy.AllowSHA1, NameIDFormat: c.Policy.NameIDFormat,
		RejectUnverifiedEmail: c.Policy.RejectUnverifiedEmail,
		Warnings:              []string{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	for _, ci := range saml.InspectCertificates(c.IdP, ca.clock.Now(), ca.certWarning) {
		out.IdPCertificates = append(out.IdPCertificates, certificateJSON{
			Subject: ci.Subject, SHA256Fingerprint: ci.SHA256Fingerprint, NotBefore: ci.NotBefore,
			NotAfter: ci.NotAfter, Expired: ci.Expired, ExpiresSoon: ci.ExpiresSoon,
		})
		switch {
		case ci.Expired:
			out.Warnings = append(out.Warnings, fmt.Sprintf("IdP certificate %s expired on %s", ci.SHA256Fingerprint[:16], ci.NotAfter.Format(time.DateOnly)))
		case ci.ExpiresSoon:
			out.Warnings = append(out.Warnings, fmt.Sprintf("IdP certificate %s expires on %s", ci.SHA256Fingerprint[:16], ci.NotAfter.Format(time.DateOnly)))
		}
	}
	if c.Metadata.LastError != "" {
		out.Warnings = append(out.Warnings, "the last metadata refresh failed; the previous IdP configuration is still in use")
	}
	return out
}

// connectionRequest is the body of POST and PATCH. Exactly one IdP source
// is given on create: idp_metadata_xml, idp_metadata_url, or the manual
// fields idp_entity_id + idp_sso_url + idp_certificates.
type connectionRequest struct {
	Name                  *string                   `json:"name"`
	Preset                *string                   `json:"preset"`
	Status                *string                   `json:"status"`
	IdPMetadataXML        *string                   `json:"idp_metadata_xml"`
	IdPMetadataURL        *string                   `json:"idp_metadata_url"`
	IdPEntityID           *string                   `json:"idp_entity_id"`
	IdPSSOURL             *string                   `json:"idp_sso_url"`
	IdPSSOBinding         *string                   `json:"idp_sso_binding"`
	IdPCertificates       *[]string                 `json:"idp_certificates"`
	AttributeMapping      *tenants.AttributeMapping `json:"attribute_mapping"`
	AllowIdPInitiated     *bool                     `json:"allow_idp_initiated"`
	SignAuthnRequests     *bool                     `json:"sign_authn_requests"`
	AllowSHA1             *bool                     `json:"allow_sha1"`
	NameIDFormat          *string                   `json:"name_id_format"`
	RejectUnverifiedEmail *bool                     `json:"reject_unverified_email"`
}

func (in connectionRequest) hasManual() bool {
	return in.IdPEntityID != nil || in.IdPSSOURL != nil || in.IdPCertificates != nil || in.IdPSSOBinding != nil
}

// idpSource resolves the request's IdP source against base (the current
// config on PATCH, empty on create): pasted or fetched metadata replaces it,
// manual fields are merged into it (so a PATCH can add a rollover
// certificate alone). changed is false when the request names no source.
// Fetching happens here, before any transaction: a slow IdP must not hold a
// row lock.
func (ca *connectionAdmin) idpSource(ctx context.Context, in connectionRequest) (resolve func(base tenants.IdPConfig) (tenants.IdPConfig, error), metadataURL string, changed bool, err error) {
	n := 0
	for _, present := range []bool{in.IdPMetadataXML != nil, in.IdPMetadataURL != nil, in.hasManual()} {
		if present {
			n++
		}
	}
	fixed := func(idp tenants.IdPConfig) func(tenants.IdPConfig) (tenants.IdPConfig, error) {
		return func(tenants.IdPConfig) (tenants.IdPConfig, error) { return idp, nil }
	}
	switch {
	case n == 0:
		return nil, "", false, nil
	case n > 1:
		return nil, "", false, unprocessable("idp_metadata_xml", "give exactly one IdP source: idp_metadata_xml, idp_metadata_url, or idp_entity_id with idp_sso_url and idp_certificates")
	case in.IdPMetadataXML != nil:
		idp, err := saml.ParseIdPMetadata([]byte(*in.IdPMetadataXML))
		if err != nil {
			return nil, "", false, &apiError{Status: http.StatusUnprocessableEntity, Type: "invalid_metadata", Field: "idp_metadata_xml", Detail: "IdP metadata: " + err.Error(), Err: err}
		}
		return fixed(idp), "", true, nil
	case in.IdPMetadataURL != nil:
		u := *in.IdPMetadataURL
		if err := tenants.ValidateMetadataURL(u); err != nil {
			return nil, "", false, err
		}
		idp, err := fetchIdPMetadata(ctx, ca.fetcher, u)
		if err != nil {
			return nil, "", false, &apiError{Status: http.StatusUnprocessableEntity, Type: "invalid_metadata", Field: "idp_metadata_url", Detail: err.Error(), Err: err}
		}
		return fixed(idp), u, true, nil
	}
	var certs []string
	if in.IdPCertificates != nil {
		for i, c := range *in.IdPCertificates {
			cert, err := tenants.ParseCertificate(c)
			if err != nil {
				return nil, "", false, unprocessable(fmt.Sprintf("idp_certificates[%d]", i), fmt.Sprintf("idp_certificates[%d] %s", i, err))
			}
			certs = append(certs, tenants.CertificatePEM(cert))
		}
	}
	binding := deref(in.IdPSSOBinding)
	if binding != "" && binding != "redirect" && binding != "post" {
		return nil, "", false, unprocessable("idp_sso_binding", `idp_sso_binding must be "redirect" or "post"`)
	}
	resolve = func(base tenants.IdPConfig) (tenants.IdPConfig, error) {
		idp := base
		idp.MetadataXML = ""
		if in.IdPEntityID != nil {
			idp.EntityID = *in.IdPEntityID
		}
		if in.IdPCertificates != nil {
			idp.Certificates = certs
		}
		if in.IdPSSOURL != nil || in.IdPSSOBinding != nil {
			url := deref(in.IdPSSOURL)
			if url == "" {
				url = base.SSORedirectURL + base.SSOPostURL
			}
			idp.SSORedirectURL, idp.SSOPostURL = "", ""
			if binding == "post" {
				idp.SSOPostURL = url
			} else {
				idp.SSORedirectURL = url
			}
		}
		return idp, nil
	}
	return resolve, "", true, nil
}

// fetchIdPMetadata downloads and parses IdP metadata; errors name the step
// that failed so the operator can fix the URL or the IdP.
func fetchIdPMetadata(ctx context.Context, fetcher metadataFetcher, url string) (tenants.IdPConfig, error) {
	body, err := fetcher.Fetch(ctx, url)
	if err != nil {
		return tenants.IdPConfig{}, fmt.Errorf("fetching IdP metadata from %s: %w", url, err)
	}
	idp, err := saml.ParseIdPMetadata(body)
	if err != nil {
		return tenants.IdPConfig{}, fmt.Errorf("IdP metadata from %s: %w", url, err)
	}
	return idp, nil
}

func (in connectionRequest) applyTo(c *tenants.Connection) {
	if in.Name != nil {
		c.Name = *in.Name
	}
	if in.Preset != nil {
		c.Preset = tenants.Preset(*in.Preset)
	}
	if in.Status != nil {
		c.Status = tenants.ConnectionStatus(*in.Status)
	}
	if in.AttributeMapping != nil {
		c.AttributeMapping = *in.AttributeMapping
	}
	if in.AllowIdPInitiated != nil {
		c.Policy.AllowIdPInitiated = *in.AllowIdPInitiated
	}
	if in.SignAuthnRequests != nil {
		c.Policy.SignAuthnRequests = *in.SignAuthnRequests
	}
	if in.AllowSHA1 != nil {
		c.Policy.AllowSHA1 = *in.AllowSHA1
	}
	if in.NameIDFormat != nil {
		c.Policy.NameIDFormat = *in.NameIDFormat
	}
	if in.RejectUnverifiedEmail != nil {
		c.Policy.RejectUnverifiedEmail = *in.RejectUnverifiedEmail
	}
}

func (ca *connectionAdmin) create(w http.ResponseWriter, r *http.Request) error {
	tenantID, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	var in connectionRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	c, err := ca.createConnection(r.Context(), tenantID, in)
	if err != nil {
		return err
	}
	ca.recorder.admin(r, audit.Event{Type: audit.ConnectionCreated, TenantID: tenantID, ConnectionID: c.ID,
		Detail: fmt.Sprintf("preset %s, IdP %s", c.Preset, truncate(c.IdP.EntityID, 200))})
	writeJSON(w, http.StatusCreated, ca.toJSON(c))
	return nil
}

// createConnection creates a connection of tenantID from any IdP source,
// with a fresh SP key pair. The admin API and the tenant portal share it.
func (ca *connectionAdmin) createConnection(ctx context.Context, tenantID string, in connectionRequest) (tenants.Connection, error) {
	if _, err := ca.dir.Store.Tenant(ctx, tenantID); err != nil {
		return tenants.Connection{}, tenantNotFound(err, tenantID)
	}
	resolve, metadataURL, ok, err := ca.idpSource(ctx, in)
	if err != nil {
		return tenants.Connection{}, err
	}
	if !ok {
		return tenants.Connection{}, unprocessable("idp_metadata_xml", "an IdP source is required: idp_metadata_xml, idp_metadata_url, or idp_entity_id with idp_sso_url and idp_certificates")
	}
	idp, err := resolve(tenants.IdPConfig{})
	if err != nil {
		return tenants.Connection{}, err
	}
	now := ca.clock.Now()
	key, cert, err := saml.GenerateSPKey(ca.random, now, "ssobroker SP")
	if err != nil {
		return tenants.Connection{}, fmt.Errorf("generating SP key: %w", err)
	}
	c := tenants.Connection{TenantID: tenantID, IdP: idp, SPKey: key, SPCertificate: cert}
	if metadataURL != "" {
		c.Metadata = tenants.MetadataSource{URL: metadataURL, RefreshedAt: now, NextRefreshAt: now.Add(ca.refreshInterval)}
	}
	in.applyTo(&c)
	c, err = ca.dir.CreateConnection(ctx, c)
	if err != nil {
		return tenants.Connection{}, tenantNotFound(err, tenantID)
	}
	return c, nil
}

// updateConnection applies a PATCH. A non-empty tenantID limits it to
// that tenant's connections (the portal): another tenant's connection is
// reported as not found, never changed.
func (ca *connectionAdmin) updateConnection(ctx context.Context, id, tenantID string, in connectionRequest) (tenants.Connection, bool, error) {
	resolve, metadataURL, newSource, err := ca.idpSource(ctx, in)
	if err != nil {
		return tenants.Connection{}, false, err
	}
	now := ca.clock.Now()
	c, err := ca.dir.Store.UpdateConnection(ctx, id, func(c *tenants.Connection) error {
		if tenantID != "" && c.TenantID != tenantID {
			return fmt.Errorf("connection %s is not a connection of tenant %s: %w", id, tenantID, tenants.ErrNotFound)
		}
		if newSource {
			idp, err := resolve(c.IdP)
			if err != nil {
				return err
			}
			c.IdP = idp
			c.Metadata = tenants.MetadataSource{}
			if metadataURL != "" {
				c.Metadata = tenants.MetadataSource{URL: metadataURL, RefreshedAt: now, NextRefreshAt: now.Add(ca.refreshInterval)}
			}
		}
		in.applyTo(c)
		c.UpdatedAt = now
		return tenants.ValidateConnection(c)
	})
	if err != nil {
		return tenants.Connection{}, false, connectionNotFound(err, id)
	}
	return c, newSource, nil
}

func (ca *connectionAdmin) get(w http.ResponseWriter, r *http.Request) error {
	id, err := connectionIDParam(r)
	if err != nil {
		return err
	}
	c, err := ca.dir.Store.Connection(r.Context(), id)
	if err != nil {
		return connectionNotFound(err, id)
	}
	writeJSON(w, http.StatusOK, ca.toJSON(c))
	return nil
}

func (ca *connectionAdmin) listForTenant(w http.ResponseWriter, r *http.Request) error {
	tenantID, err := tenantIDParam(r)
	if err != nil {
		return err
	}
	p, err := pageFromQuery(r)
	if err != nil {
		return err
	}
	if _, err := ca.dir.Store.Tenant(r.Context(), tenantID); err != nil {
		return tenantNotFound(err, tenantID)
	}
	items, next, err := ca.dir.Store.ListConnections(r.Context(), tenantID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next, ca.toJSON))
	return nil
}

func (ca *connectionAdmin) patch(w http.ResponseWriter, r *http.Request) error {
	id, err := connectionIDParam(r)
	if err != nil {
		return err
	}
	var in connectionRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	c, newSource, err := ca.updateConnection(r.Context(), id, "", in)
	if err != nil {
		return err
	}
	ca.recorder.admin(r, audit.Event{Type: audit.ConnectionUpdated, TenantID: c.TenantID, ConnectionID: c.ID,
		Detail: fmt.Sprintf("status %s, new IdP source %t", c.Status, newSource)})
	writeJSON(w, http.StatusOK, ca.toJSON(c))
	return nil
}

func (ca *connectionAdmin) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := connectionIDParam(r)
	if err != nil {
		return err
	}
	c, err := ca.dir.Store.Connection(r.Context(), id)
	if err != nil {
		return connectionNotFound(err, id)
	}
	if err := ca.dir.Store.DeleteConnection(r.Context(), id); err != nil {
		return connectionNotFound(err, id)
	}
	ca.recorder.admin(r, audit.Event{Type: audit.ConnectionDeleted, TenantID: c.TenantID, ConnectionID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func connectionIDParam(r *http.Request) (string, error) {
	return idParam(r, "connectionID", tenants.PrefixConnection, "connection")
}

func connectionNotFound(err error, id string) error { return notFoundAs(err, "connection", id) }
