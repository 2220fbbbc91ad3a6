package oidcprovider

import (
	"context"
	"fmt"
	"strings"

	"github.com/ssobroker/ssobroker/tenants"
)

// reqState carries what our wrappers learned about one HTTP request to the
// Storage methods zitadel calls during it (zitadel passes r.Context()).
type reqState struct {
	// client is the last client read during this request. zitadel reads the
	// client up to three times per request (validation, authentication,
	// response); one read serves them all. Nothing is cached across
	// requests, so a changed or deleted client applies to the next request.
	client *tenants.Client

	// Set by the token and introspection wrappers once the client has
	// authenticated; RedeemCode binds the code to it.
	authClientID string
	// codeChallenge is S256(code_verifier) of a token request, "" when the
	// request has no verifier.
	codeChallenge string
	// The token wrapper redeems the code or reads the refresh token itself
	// (so that a store failure is a 500, not zitadel's invalid_grant, which
	// would make clients throw their refresh tokens away); zitadel's own
	// calls for the same value get these.
	code         string
	codeLogin    *authRequest
	refresh      string
	refreshGrant *refreshRequest
	// redirectURI is the token request's; the code is redeemed only with
	// the one it was issued for.
	redirectURI string
	// redemption is the grant RedeemCode created for codeLogin, handed to
	// zitadel's CreateAccessToken / CreateAccessAndRefreshTokens, with the
	// raw refresh token (never stored).
	redemption   *CodeRedemption
	refreshToken string

	// Set by the authorize wrapper.
	authorize   *authorizeExtras
	browserHash string
}

type reqStateKey struct{}

func withReqState(ctx context.Context) (context.Context, *reqState) {
	rs := &reqState{}
	return context.WithValue(ctx, reqStateKey{}, rs), rs
}

func reqStateFrom(ctx context.Context) *reqState {
	rs, _ := ctx.Value(reqStateKey{}).(*reqState)
	return rs
}

// maxClientIDLength bounds a client_id before it reaches the store.
const maxClientIDLength = 64

// client reads a client, once per request.
func (p *Provider) client(ctx context.Context, id string) (tenants.Client, error) {
	rs := reqStateFrom(ctx)
	if rs != nil && rs.client != nil && rs.client.ID == id {
		return *rs.client, nil
	}
	if id == "" || len(id) > maxClientIDLength || strings.ContainsAny(id, ":/?#%") {
		return tenants.Client{}, fmt.Errorf("oidcprovider: client %.64q: %w", id, tenants.ErrNotFound)
	}
	c, err := p.st.Client(ctx, id)
	if err != nil {
		return tenants.Client{}, err
	}
	if rs != nil {
		rs.client = &c
	}
	return c, nil
}
