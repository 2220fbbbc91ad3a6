package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/tenants"
)

type clientJSON struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	Name                    string    `json:"name"`
	Public                  bool      `json:"public"`
	RedirectURIs            []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string  `json:"post_logout_redirect_uris"`
	InitiateLoginURI        string    `json:"initiate_login_uri,omitempty"`
	AllowedTenants          []string  `json:"allowed_tenants"`
	AccessTokenTTLSeconds   int64     `json:"access_token_ttl_seconds,omitempty"`
	IDTokenTTLSeconds       int64     `json:"id_token_ttl_seconds,omitempty"`
	RefreshTokenTTLSeconds  int64     `json:"refresh_token_ttl_seconds,omitempty"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at,omitzero"`
	CreatedAt               time.Time `json:"created_at"`
	UpdatedAt               time.Time `json:"updated_at"`
}

func toClientJSON(c tenants.Client) clientJSON {
	nonNil := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	out := clientJSON{
		ClientID: c.ID, Name: c.Name, Public: c.Public,
		RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		InitiateLoginURI: c.InitiateLoginURI, AllowedTenants: nonNil(c.AllowedTenants),
		AccessTokenTTLSeconds: int64(c.AccessTokenTTL / time.Second), IDTokenTTLSeconds: int64(c.IDTokenTTL / time.Second),
		RefreshTokenTTLSeconds: int64(c.RefreshTokenTTL / time.Second),
		CreatedAt:              c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if c.PreviousSecretHash != "" {
		out.PreviousSecretExpiresAt = c.PreviousSecretExpiresAt
	}
	return out
}

// clientRequest is the body of POST and PATCH; pointers tell "absent" from
// "set to empty" for PATCH.
type clientRequest struct {
	Name                   *string   `json:"name"`
	Public                 *bool     `json:"public"`
	RedirectURIs           *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
	InitiateLoginURI       *string   `json:"initiate_login_uri"`
	AllowedTenants         *[]string `json:"allowed_tenants"`
	AccessTokenTTLSeconds  *int64    `json:"access_token_ttl_seconds"`
	IDTokenTTLSeconds      *int64    `json:"id_token_ttl_seconds"`
	RefreshTokenTTLSeconds *int64    `json:"refresh_token_ttl_seconds"`
}

func seconds(p *int64) time.Duration {
	if p == nil {
		return 0
	}
	return time.Duration(*p) * time.Second
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// checkAllowedTenants makes sure an allow-list names real tenants: a typo
// would otherwise lock every user out with no hint why.
func (a *admin) checkAllowedTenants(ctx context.Context, ids []string) error {
	for i, id := range ids {
		if !validID(id, tenants.PrefixTenant) {
			return unprocessable(fmt.Sprintf("allowed_tenants[%d]", i), fmt.Sprintf("%q is not a tenant id", truncate(id, 64)))
		}
		if _, err := a.dir.Store.Tenant(ctx, id); err != nil {
			if errors.Is(err, tenants.ErrNotFound) {
				return unprocessable(fmt.Sprintf("allowed_tenants[%d]", i), fmt.Sprintf("tenant %s does not exist", id))
			}
			return err
		}
	}
	return nil
}

func (a *admin) createClient(w http.ResponseWriter, r *http.Request) error {
	var in clientRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.AllowedTenants != nil {
		if err := a.checkAllowedTenants(r.Context(), *in.AllowedTenants); err != nil {
			return err
		}
	}
	c, secret, err := a.dir.CreateClient(r.Context(), tenants.NewClient{
		Name: deref(in.Name), Public: deref(in.Public),
		RedirectURIs: deref(in.RedirectURIs), PostLogoutRedirectURIs: deref(in.PostLogoutRedirectURIs),
		InitiateLoginURI: deref(in.InitiateLoginURI), AllowedTenants: deref(in.AllowedTenants),
		AccessTokenTTL: seconds(in.AccessTokenTTLSeconds), IDTokenTTL: seconds(in.IDTokenTTLSeconds),
		RefreshTokenTTL: seconds(in.RefreshTokenTTLSeconds),
	})
	if err != nil {
		return err
	}
	a.recorder.admin(r, audit.Event{Type: audit.ClientCreated, ClientID: c.ID, Detail: fmt.Sprintf("name %q, public %t", c.Name, c.Public)})
	out := toClientJSON(c)
	out.ClientSecret = secret.Reveal() // shown once; only its hash is stored
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *admin) listClients(w http.ResponseWriter, r *http.Request) error {
	p, err := pageFromQuery(r)
	if err != nil {
		return err
	}
	items, next, err := a.dir.Store.ListClients(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next, toClientJSON))
	return nil
}

func (a *admin) getClient(w http.ResponseWriter, r *http.Request) error {
	id, err := clientIDParam(r)
	if err != nil {
		return err
	}
	c, err := a.dir.Store.Client(r.Context(), id)
	if err != nil {
		return clientNotFound(err, id)
	}
	writeJSON(w, http.StatusOK, toClientJSON(c))
	return nil
}

func (a *admin) patchClient(w http.ResponseWriter, r *http.Request) error {
	id, err := clientIDParam(r)
	if err != nil {
		return err
	}
	var in clientRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Public != nil {
		return unprocessable("public", "a client cannot switch between public and confidential; create a new client")
	}
	if in.AllowedTenants != nil {
		if err := a.checkAllowedTenants(r.Context(), *in.AllowedTenants); err != nil {
			return err
		}
	}
	now := a.clock.Now()
	c, err := a.dir.Store.UpdateClient(r.Context(), id, func(c *tenants.Client) error {
		if in.Name != nil {
			c.Name = *in.Name
		}
		if in.RedirectURIs != nil {
			c.RedirectURIs = *in.RedirectURIs
		}
		if in.PostLogoutRedirectURIs != nil {
			c.PostLogoutRedirectURIs = *in.PostLogoutRedirectURIs
		}
		if in.InitiateLoginURI != nil {
			c.InitiateLoginURI = *in.InitiateLoginURI
		}
		if in.AllowedTenants != nil {
			c.AllowedTenants = *in.AllowedTenants
		}
		if in.AccessTokenTTLSeconds != nil {
			c.AccessTokenTTL = seconds(in.AccessTokenTTLSeconds)
		}
		if in.IDTokenTTLSeconds != nil {
			c.IDTokenTTL = seconds(in.IDTokenTTLSeconds)
		}
		if in.RefreshTokenTTLSeconds != nil {
			c.RefreshTokenTTL = seconds(in.RefreshTokenTTLSeconds)
		}
		c.UpdatedAt = now
		return tenants.ValidateClient(c)
	})
	if err != nil {
		return clientNotFound(err, id)
	}
	a.recorder.admin(r, audit.Event{Type: audit.ClientUpdated, ClientID: id})
	writeJSON(w, http.StatusOK, toClientJSON(c))
	return nil
}

func (a *admin) deleteClient(w http.ResponseWriter, r *http.Request) error {
	id, err := clientIDParam(r)
	if err != nil {
		return err
	}
	if err := a.dir.Store.DeleteClient(r.Context(), id); err != nil {
		return clientNotFound(err, id)
	}
	a.recorder.admin(r, audit.Event{Type: audit.ClientDeleted, ClientID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *admin) rotateClientSecret(w http.ResponseWriter, r *http.Request) error {
	id, err := clientIDParam(r)
	if err != nil {
		return err
	}
	var in struct {
		GracePeriodSeconds int64 `json:"grace_period_seconds"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	c, secret, err := a.dir.RotateClientSecret(r.Context(), id, time.Duration(in.GracePeriodSeconds)*time.Second)
	if err != nil {
		return clientNotFound(err, id)
	}
	detail := "previous secret revoked"
	if c.PreviousSecretHash != "" {
		detail = "previous secret valid until " + c.PreviousSecretExpiresAt.Format(time.RFC3339)
	}
	a.recorder.admin(r, audit.Event{Type: audit.ClientSecretRotated, ClientID: id, Detail: detail})
	out := toClientJSON(c)
	out.ClientSecret = secret.Reveal()
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func clientIDParam(r *http.Request) (string, error) {
	return idParam(r, "clientID", tenants.PrefixClient, "client")
}

func clientNotFound(err error, id string) error { return notFoundAs(err, "client", id) }
