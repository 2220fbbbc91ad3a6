package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/tenants"
)

// simulatorUI is dev mode's IdP: a page where the developer picks the user
// (email, names, groups, attribute style) and a failure scenario, then a
// real signed SAML response is posted to the broker's ACS. It is mounted
// only by `ssobroker dev`.
type simulatorUI struct {
	sim   *saml.Simulator
	sps   serviceProviders
	refs  connectionRefs
	urls  spURLs
	pages *pages
	log   *slog.Logger
}

func (s *simulatorUI) Mount(r chi.Router) {
	r.Get("/metadata", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(s.sim.Metadata())
	})
	r.Get("/sso", s.sso)
	r.Post("/sso", s.sso)
	r.Post("/respond", s.respond)
}

type simulatorPage struct {
	SP          string
	ACS         string
	Binding     string
	Query       string // the original redirect-binding query
	SAMLRequest string // the original POST-binding request
	RelayState  string
	ForceAuthn  bool
	User        saml.SimulatedUser
	Groups      string
	Styles      []string
	Scenarios   []string
	Signs       []string
	Error       string
	RequestID   string
}

// register lets the simulator answer any connection of this broker: an SP
// entity ID under {issuer}/saml/ is looked up and its metadata registered.
func (s *simulatorUI) register(ctx context.Context, entityID string) error {
	id, ok := strings.CutPrefix(entityID, s.urls.entityID(""))
	if !ok || !validID(id, tenants.PrefixConnection) {
		return nil
	}
	ref, err := s.refs.ConnectionRef(ctx, id)
	if err != nil {
		return err
	}
	sp, err := s.sps.get(ctx, id, ref.UpdatedAt)
	if err != nil {
		return err
	}
	md, err := sp.Metadata()
	if err != nil {
		return err
	}
	return s.sim.RegisterServiceProvider(md)
}

// parse reads the AuthnRequest, registering the SP on first sight.
func (s *simulatorUI) parse(r *http.Request) (saml.AuthnRequestInfo, error) {
	info, err := s.sim.ParseAuthnRequest(r)
	if err != nil && strings.Contains(err.Error(), "unknown SP") {
		// ParseForm keeps the POST binding's form in r.PostForm, so the
		// second parse reads the same request.
		if rerr := s.register(r.Context(), info.Issuer); rerr == nil {
			info, err = s.sim.ParseAuthnRequest(r)
		}
	}
	return info, err
}

func (s *simulatorUI) sso(w http.ResponseWriter, r *http.Request) {
	info, err := s.parse(r)
	if err != nil {
		s.pages.render(w, r, http.StatusBadRequest, "error.html", errorPage{
			Title: "The simulator could not read the AuthnRequest", Message: err.Error(), RequestID: requestID(r.Context()),
		}, "")
		return
	}
	user := saml.DefaultSimulatedUser()
	page := simulatorPage{
		SP: info.Issuer, ACS: info.ACSURL, Binding: info.Binding, RelayState: info.RelayState, ForceAuthn: info.ForceAuthn,
		User: user, Groups: strings.Join(user.Groups, ", "), RequestID: requestID(r.Context()),
	}
	if info.Binding == saml.BindingRedirect {
		page.Query = r.URL.RawQuery
	} else {
		page.SAMLRequest = r.PostForm.Get("SAMLRequest")
	}
	s.renderForm(w, r, page)
}

func (s *simulatorUI) renderForm(w http.ResponseWriter, r *http.Request, page simulatorPage) {
	page.Styles = []string{string(saml.StyleOkta), string(saml.StyleEntra), string(saml.StyleGeneric)}
	for _, sc := range saml.Scenarios() {
		page.Scenarios = append(page.Scenarios, string(sc))
	}
	page.Signs = []string{string(saml.SignBoth), string(saml.SignAssertion), string(saml.SignResponse)}
	s.pages.render(w, r, http.StatusOK, "simulator.html", page, "")
}

// respond builds the response the developer asked for and posts it to the
// ACS from the browser, exactly as a real IdP's page would.
func (s *simulatorUI) respond(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	// Re-read the original AuthnRequest rather than trusting hidden fields
	// for its ID and ACS URL.
	orig := &http.Request{Method: http.MethodGet, URL: &url.URL{RawQuery: f.Get("query")}, Header: http.Header{}}
	if f.Get("binding") == saml.BindingPost {
		orig = &http.Request{Method: http.MethodPost, PostForm: url.Values{"SAMLRequest": {f.Get("saml_request")}, "RelayState": {f.Get("relay_state")}},
			Form: url.Values{}, Header: http.Header{}}
	}
	orig = orig.WithContext(r.Context())
	info, err := s.parse(orig)
	if err != nil {
		s.pages.render(w, r, http.StatusBadRequest, "error.html", errorPage{
			Title: "The simulator could not read the AuthnRequest", Message: err.Error(), RequestID: requestID(r.Context()),
		}, "")
		return
	}
	email := strings.TrimSpace(f.Get("email"))
	user := saml.SimulatedUser{
		NameID: email, NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
		Email: email, GivenName: strings.TrimSpace(f.Get("given_name")), FamilyName: strings.TrimSpace(f.Get("family_name")),
		DisplayName: strings.TrimSpace(f.Get("given_name") + " " + f.Get("family_name")),
		Style:       saml.AttributeStyle(f.Get("style")),
	}
	for _, g := range strings.Split(f.Get("groups"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			user.Groups = append(user.Groups, g)
		}
	}
	if user.Style == saml.StyleEntra {
		user.ObjectID = fakeObjectID(email)
	}
	sc := saml.Scenario{Name: saml.ScenarioName(f.Get("scenario")), Sign: saml.SignedParts(f.Get("sign")), StatusMessage: "The simulated IdP refused the sign-in."}
	resp, err := s.sim.Respond(info, user, sc)
	if err != nil {
		page := simulatorPage{SP: info.Issuer, ACS: info.ACSURL, Binding: info.Binding, Query: f.Get("query"),
			SAMLRequest: f.Get("saml_request"), RelayState: info.RelayState, User: user, Groups: f.Get("groups"),
			Error: err.Error(), RequestID: requestID(r.Context())}
		s.renderForm(w, r, page)
		return
	}
	s.log.InfoContext(r.Context(), "simulator response", slog.String("sp", info.Issuer), slog.String("scenario", string(sc.Name)))
	s.pages.render(w, r, http.StatusOK, "samlpost.html", samlPostPage{
		Action: info.ACSURL, RequestID: requestID(r.Context()),
		Fields: []formField{{"SAMLResponse", resp}, {"RelayState", info.RelayState}},
	}, originOf(info.ACSURL))
}

// fakeObjectID gives a stable, Entra-shaped object id per email in dev
// mode, so a repeat login keeps its sub.
func fakeObjectID(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
