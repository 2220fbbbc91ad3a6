package broker

import (
	"net/http"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/tenants"
)

type identityJSON struct {
	Sub           string              `json:"sub"`
	TenantID      string              `json:"tenant_id"`
	ConnectionID  string              `json:"connection_id"`
	IdPSubject    string              `json:"idp_subject"`
	Email         string              `json:"email,omitempty"`
	EmailVerified bool                `json:"email_verified"`
	Name          string              `json:"name,omitempty"`
	GivenName     string              `json:"given_name,omitempty"`
	FamilyName    string              `json:"family_name,omitempty"`
	Groups        []string            `json:"groups,omitempty"`
	Attributes    map[string][]string `json:"raw_attributes,omitempty"`
	Status        string              `json:"status"`
	CreatedAt     time.Time           `json:"created_at"`
	UpdatedAt     time.Time           `json:"updated_at"`
	LastLoginAt   time.Time           `json:"last_login_at"`
}

func toIdentityJSON(i tenants.Identity) identityJSON {
	return identityJSON{
		Sub: i.Subject, TenantID: i.TenantID, ConnectionID: i.ConnectionID, IdPSubject: i.IdPSubject,
		Email: i.Email, EmailVerified: i.EmailVerified, Name: i.Profile.Name, GivenName: i.Profile.GivenName,
		FamilyName: i.Profile.FamilyName, Groups: i.Profile.Groups, Attributes: i.Profile.Attributes,
		Status: string(i.Status), CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt, LastLoginAt: i.LastLoginAt,
	}
}

func (a *admin) listIdentities(w http.ResponseWriter, r *http.Request) error {
	p, err := pageFromQuery(r)
	if err != nil {
		return err
	}
	tenantID := r.URL.Query().Get("tenant_id")
	if tenantID == "" {
		return unprocessable("tenant_id", "tenant_id is required: identities are listed per tenant")
	}
	if !validID(tenantID, tenants.PrefixTenant) {
		return unprocessable("tenant_id", "tenant_id is not a tenant id")
	}
	items, next, err := a.dir.Store.ListIdentities(r.Context(), tenantID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next, toIdentityJSON))
	return nil
}

func (a *admin) getIdentity(w http.ResponseWriter, r *http.Request) error {
	sub, err := subParam(r)
	if err != nil {
		return err
	}
	i, err := a.dir.Store.Identity(r.Context(), sub)
	if err != nil {
		return identityNotFound(err, sub)
	}
	writeJSON(w, http.StatusOK, toIdentityJSON(i))
	return nil
}

func (a *admin) deactivateIdentity(w http.ResponseWriter, r *http.Request) error {
	return a.setIdentityStatus(w, r, tenants.IdentityDeactivated, audit.IdentityDeactivated)
}

func (a *admin) reactivateIdentity(w http.ResponseWriter, r *http.Request) error {
	return a.setIdentityStatus(w, r, tenants.IdentityActive, audit.IdentityReactivated)
}

// setIdentityStatus changes an identity's status; the store revokes every
// token grant of a deactivated subject in the same transaction.
func (a *admin) setIdentityStatus(w http.ResponseWriter, r *http.Request, status tenants.IdentityStatus, event audit.Type) error {
	sub, err := subParam(r)
	if err != nil {
		return err
	}
	i, err := a.dir.Store.SetIdentityStatus(r.Context(), sub, status, a.clock.Now())
	if err != nil {
		return identityNotFound(err, sub)
	}
	a.recorder.admin(r, audit.Event{Type: event, TenantID: i.TenantID, ConnectionID: i.ConnectionID, Subject: i.Subject, Email: i.Email})
	writeJSON(w, http.StatusOK, toIdentityJSON(i))
	return nil
}

func subParam(r *http.Request) (string, error) {
	return idParam(r, "sub", tenants.PrefixIdentity, "identity")
}

func identityNotFound(err error, sub string) error { return notFoundAs(err, "identity", sub) }
