package saml

import (
	"reflect"
	"testing"

	"github.com/ssobroker/ssobroker/tenants"
)

// TestSamePersonSameProfile: one person through an Okta-style, an
// Entra-style and an LDAP-style IdP maps to the same profile fields. The
// Subject differs on purpose (Entra's is the objectidentifier).
func TestSamePersonSameProfile(t *testing.T) {
	person := SimulatedUser{
		NameID: "Dana.Scully@FBI.example.com", NameIDFormat: nameIDEmail,
		Email: "Dana.Scully@FBI.example.com", GivenName: "Dana", FamilyName: "Scully", DisplayName: "Dana Scully",
		Groups: []string{"x-files", "agents"}, ObjectID: "6f1c2a4e-0000-4000-8000-000000000001",
	}
	want := tenants.Profile{
		Email: "Dana.Scully@fbi.example.com", GivenName: "Dana", FamilyName: "Scully", Name: "Dana Scully",
		Groups: []string{"x-files", "agents"},
	}
	for _, tc := range []struct {
		style       AttributeStyle
		preset      tenants.Preset
		wantSubject string
	}{
		{StyleOkta, tenants.PresetOkta, person.NameID},
		{StyleEntra, tenants.PresetEntra, person.ObjectID},
		{StyleGeneric, tenants.PresetGeneric, person.NameID},
		{StyleOkta, tenants.PresetGeneric, person.NameID},
		{StyleEntra, tenants.PresetGeneric, person.NameID},
		{StyleGeneric, tenants.PresetPing, person.NameID},
		{StyleOkta, tenants.PresetGoogle, person.NameID},
	} {
		t.Run(string(tc.style)+" as "+string(tc.preset), func(t *testing.T) {
			u := person
			u.Style = tc.style
			attrs := make([]attribute, 0)
			for _, a := range userAttributes(u) {
				attrs = append(attrs, a.attribute)
			}
			p := mapProfile(tc.preset, tenants.AttributeMapping{}, u.NameID, u.NameIDFormat, attrs)
			got := tenants.Profile{Email: p.Email, GivenName: p.GivenName, FamilyName: p.FamilyName, Name: p.Name, Groups: p.Groups}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			if p.Subject != tc.wantSubject {
				t.Fatalf("Subject %q, want %q", p.Subject, tc.wantSubject)
			}
			if len(p.Attributes) != len(attrs) {
				t.Fatalf("Attributes has %d entries, want %d", len(p.Attributes), len(attrs))
			}
		})
	}
}

func TestMapProfile(t *testing.T) {
	for _, tc := range []struct {
		name      string
		preset    tenants.Preset
		over      tenants.AttributeMapping
		nameID    string
		format    string
		attrs     []attribute
		want      tenants.Profile
		checkOnly []string
	}{
		{
			name: "entra claims, overage, roles", preset: tenants.PresetEntra,
			nameID: "dana@fbi.example.com", format: nameIDPersistent,
			attrs: []attribute{
				{Name: msObjectID, Values: []string{"oid-1"}},
				{Name: claimEmail, Values: []string{"dana@fbi.example.com"}},
				{Name: claimGivenName, Values: []string{"Dana"}},
				{Name: claimSurname, Values: []string{"Scully"}},
				{Name: msDisplayName, Values: []string{"Agent Scully"}},
				{Name: msRole, Values: []string{"Admin"}},
				{Name: msGroupsLink, Values: []string{"https://graph.windows.net/t/users/oid-1/getMemberObjects"}},
			},
			want: tenants.Profile{Subject: "oid-1", Email: "dana@fbi.example.com", GivenName: "Dana", FamilyName: "Scully",
				Name: "Agent Scully", Groups: []string{"Admin"}, GroupsOverage: "https://graph.windows.net/t/users/oid-1/getMemberObjects"},
		},
		{
			name: "entra without email claim falls back to UPN", preset: tenants.PresetEntra, nameID: "opaque", format: nameIDPersistent,
			attrs: []attribute{{Name: claimName, Values: []string{"dana@fbi.example.com"}}},
			want:  tenants.Profile{Subject: "opaque", Email: "dana@fbi.example.com"},
		},
		{
			name: "onelogin", preset: tenants.PresetOneLogin, nameID: "ross@kndr.org", format: nameIDEmail,
			attrs: []attribute{
				{Name: "User.email", Values: []string{"ross@kndr.org"}},
				{Name: "User.FirstName", Values: []string{"Ross"}},
				{Name: "User.LastName", Values: []string{"Kinder"}},
				{Name: "memberOf", Values: []string{"eng", "eng", " "}},
			},
			want: tenants.Profile{Subject: "ross@kndr.org", Email: "ross@kndr.org", GivenName: "Ross", FamilyName: "Kinder", Name: "Ross Kinder", Groups: []string{"eng"}},
		},
		{
			name: "ping", preset: tenants.PresetPing, nameID: "u123", format: nameIDUnspecified,
			attrs: []attribute{
				{Name: "subject", Values: []string{"first.last@ping.example.com"}},
				{Name: "givenName", Values: []string{"First"}},
				{Name: "sn", Values: []string{"Last"}},
				{Name: "memberOf", Values: []string{"cn=admins,dc=example"}},
			},
			want: tenants.Profile{Subject: "u123", Email: "first.last@ping.example.com", GivenName: "First", FamilyName: "Last", Name: "First Last", Groups: []string{"cn=admins,dc=example"}},
		},
		{
			name: "generic LDAP OIDs matched by FriendlyName and case", preset: tenants.PresetGeneric, nameID: "x", format: nameIDPersistent,
			attrs: []attribute{
				{Name: "urn:oid:9.9.9", FriendlyName: "Mail", Values: []string{"who@example.org"}},
				{Name: oidGivenName, Values: []string{"Who"}},
				{Name: "SN", Values: []string{"Ever"}},
				{Name: oidDisplayName, Values: []string{"Who Ever"}},
				{Name: oidIsMemberOf, Values: []string{"staff"}},
			},
			want: tenants.Profile{Subject: "x", Email: "who@example.org", GivenName: "Who", FamilyName: "Ever", Name: "Who Ever", Groups: []string{"staff"}},
		},
		{
			name: "overrides win", preset: tenants.PresetOkta, nameID: "n@example.com", format: nameIDEmail,
			over:  tenants.AttributeMapping{Subject: "empID", Email: "workMail", GivenName: "gn", FamilyName: "fn", Name: "full", Groups: "teams"},
			attrs: []attribute{{Name: "empID", Values: []string{"E42"}}, {Name: "email", Values: []string{"preset@example.com"}}, {Name: "workMail", Values: []string{"w@example.com"}}, {Name: "gn", Values: []string{"G"}}, {Name: "fn", Values: []string{"F"}}, {Name: "full", Values: []string{"G. F."}}, {Name: "groups", Values: []string{"preset"}}, {Name: "teams", Values: []string{"t1"}}},
			want:  tenants.Profile{Subject: "E42", Email: "w@example.com", GivenName: "G", FamilyName: "F", Name: "G. F.", Groups: []string{"t1"}},
		},
		{
			name: "subject override missing means no subject", preset: tenants.PresetOkta, nameID: "n@example.com", format: nameIDEmail,
			over: tenants.AttributeMapping{Subject: "empID"},
			want: tenants.Profile{Subject: "", Email: "n@example.com"},
		},
		{
			name: "transient NameID is never a subject", preset: tenants.PresetGeneric, nameID: "_f00", format: transientNameIDFormat,
			want: tenants.Profile{Subject: ""},
		},
		{
			name: "transient NameID, eduPersonPrincipalName", preset: tenants.PresetGeneric, nameID: "_f00", format: transientNameIDFormat,
			attrs: []attribute{{Name: oidEPPN, Values: []string{"myself@testshib.org"}}},
			want:  tenants.Profile{Subject: "myself@testshib.org"},
		},
		{
			name: "email-looking persistent NameID is not an email", preset: tenants.PresetGeneric, nameID: "a@b.example.com", format: nameIDPersistent,
			want: tenants.Profile{Subject: "a@b.example.com"},
		},
		{
			name: "unspecified email-looking NameID is the email", preset: tenants.PresetGeneric, nameID: "a@B.Example.com", format: "",
			want: tenants.Profile{Subject: "a@B.Example.com", Email: "a@b.example.com"},
		},
		{
			name: "non-email values are skipped", preset: tenants.PresetOkta, nameID: "user1", format: nameIDEmail,
			attrs: []attribute{{Name: "email", Values: []string{"not an email"}}, {Name: "username", Values: []string{"user1@okta.example.com"}}},
			want:  tenants.Profile{Subject: "user1", Email: "user1@okta.example.com"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mapProfile(tc.preset, tc.over, tc.nameID, tc.format, tc.attrs)
			got := tenants.Profile{Subject: p.Subject, Email: p.Email, GivenName: p.GivenName, FamilyName: p.FamilyName,
				Name: p.Name, Groups: p.Groups, GroupsOverage: p.GroupsOverage}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestMapProfileExported(t *testing.T) {
	p := MapProfile(tenants.PresetOkta, tenants.AttributeMapping{}, "n@example.com", nameIDEmail,
		map[string][]string{"firstName": {"N"}, "Groups": {"a", "b"}})
	if p.GivenName != "N" || !reflect.DeepEqual(p.Groups, []string{"a", "b"}) || p.Email != "n@example.com" || p.NameID != "n@example.com" {
		t.Fatalf("%+v", p)
	}
	if !reflect.DeepEqual(p.Attributes["Groups"], []string{"a", "b"}) {
		t.Fatalf("Attributes %v", p.Attributes)
	}
}

// TestValidatedProfile: ValidateResponse fills the assertion facts and the
// Entra preset's subject end to end, and refuses an assertion without a
// usable subject.
func TestValidatedProfile(t *testing.T) {
	e := newTestEnv(t, func(c *tenants.Connection) { c.Preset = tenants.PresetEntra })
	u := alice()
	u.Style, u.ObjectID = StyleEntra, "oid-alice"
	id, doc := e.login(t, u, Scenario{Sign: SignAssertion})
	p, err := e.validate(doc, id)
	wantReason(t, err, "")
	if p.Subject != "oid-alice" || p.NameID != "alice@example.com" || p.Issuer != e.sim.EntityID() ||
		p.AssertionID == "" || p.SessionIndex == "" || !p.AuthnInstant.Equal(testNow) ||
		p.AuthnContext != "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport" {
		t.Fatalf("%+v", p)
	}

	e = newTestEnv(t)
	u = alice()
	u.NameIDFormat = transientNameIDFormat
	id, doc = e.login(t, u, Scenario{})
	_, err = e.validate(doc, id)
	wantReason(t, err, ReasonSubjectMissing)

	e = newTestEnv(t, func(c *tenants.Connection) { c.AttributeMapping.Subject = "employeeNumber" })
	id, doc = e.login(t, alice(), Scenario{})
	_, err = e.validate(doc, id)
	wantReason(t, err, ReasonSubjectMissing)
}
