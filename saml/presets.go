package saml

import (
	"sort"
	"strings"

	"github.com/ssobroker/ssobroker/tenants"
)

// Attribute names that IdPs use, grouped by origin.
const (
	// WS-Federation claim types (Entra ID, AD FS, Auth0).
	claimEmail     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimGivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	claimSurname   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	claimName      = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	claimUPN       = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	// Microsoft claim types.
	msObjectID    = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	msDisplayName = "http://schemas.microsoft.com/identity/claims/displayname"
	msGroups      = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	msRole        = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	msGroupsLink  = "http://schemas.microsoft.com/claims/groups.link"
	// LDAP and eduPerson attributes in their SAML 2.0 URI form.
	oidMail          = "urn:oid:0.9.2342.19200300.100.1.3"
	oidGivenName     = "urn:oid:2.5.4.42"
	oidSurname       = "urn:oid:2.5.4.4"
	oidCommonName    = "urn:oid:2.5.4.3"
	oidDisplayName   = "urn:oid:2.16.840.1.113730.3.1.241"
	oidIsMemberOf    = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
	oidMemberOf      = "urn:oid:1.2.840.113556.1.2.102"
	oidEPPN          = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
	oidTargetedID    = "urn:oid:1.3.6.1.4.1.5923.1.1.1.10"
	oidEduUniqueID   = "urn:oid:1.3.6.1.4.1.5923.1.1.1.13"
	attrSubjectID    = "urn:oasis:names:tc:SAML:attribute:subject-id"
	attrPairwiseID   = "urn:oasis:names:tc:SAML:attribute:pairwise-id"
	nameIDFormatNone = ""
)

// preset lists, per profile field, the attributes a preset reads, best
// first. Email candidates count only when their value is an email address,
// so that loose names such as "username" can serve as fallbacks.
type preset struct {
	subject    []string // preferred over the NameID (Entra's objectidentifier)
	email      []string
	givenName  []string
	familyName []string
	name       []string
	groups     []string // every listed attribute contributes
	overage    []string
}

// stableSubjects are used when the NameID is missing or transient: the
// SAML subject-id profile and eduPerson identifiers (Shibboleth,
// SimpleSAMLphp and other research-and-education IdPs).
var stableSubjects = []string{attrSubjectID, attrPairwiseID, oidEduUniqueID, "eduPersonUniqueId", oidEPPN, "eduPersonPrincipalName", oidTargetedID, "eduPersonTargetedID"}

var commonEmail = []string{"email", "mail", "emailAddress", claimEmail, oidMail}
var commonGiven = []string{"firstName", "givenName", "given_name", "first_name", claimGivenName, oidGivenName}
var commonFamily = []string{"lastName", "surname", "sn", "family_name", "last_name", claimSurname, oidSurname}
var commonName = []string{"displayName", "display_name", "name", "fullName", "cn", msDisplayName, oidDisplayName, oidCommonName}
var commonGroups = []string{"groups", "group", "memberOf", "isMemberOf", oidIsMemberOf, oidMemberOf}

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// presetFor returns the lists of a preset. Unknown presets map like
// generic.
func presetFor(p tenants.Preset) preset {
	switch p {
	case tenants.PresetOkta:
		// Okta's attribute statements are admin-defined; these are the
		// names its docs and app templates use (user.email etc. when the
		// admin copies the expression as the name). "username"/"login"
		// carry the Okta login, usually an email.
		return preset{
			email:      join([]string{"email", "user.email", "mail", "emailAddress", claimEmail, oidMail}, []string{"username", "login", "user.login"}),
			givenName:  join([]string{"firstName", "user.firstName"}, commonGiven),
			familyName: join([]string{"lastName", "user.lastName"}, commonFamily),
			name:       join([]string{"displayName", "user.displayName", "fullName"}, commonName),
			groups:     join([]string{"groups", "group", "user.groups"}, commonGroups),
		}
	case tenants.PresetEntra:
		// Entra ID's default claims. objectidentifier is immutable per
		// user and tenant; the UPN (claims/name, NameID) can be renamed.
		// App roles (claims/role) are surfaced as groups too. When a user
		// is in more groups than fit (150 in SAML), Entra sends
		// groups.link instead of the list.
		return preset{
			subject:    []string{msObjectID},
			email:      []string{claimEmail, "email", "mail", claimUPN, claimName},
			givenName:  []string{claimGivenName, "givenName", "firstName"},
			familyName: []string{claimSurname, "surname", "lastName"},
			name:       []string{msDisplayName, "displayName"},
			groups:     []string{msGroups, msRole, "groups"},
			overage:    []string{msGroupsLink},
		}
	case tenants.PresetGoogle:
		// Google Workspace sends only the attributes the admin maps, under
		// names the admin types; the primary email is the NameID.
		return preset{email: commonEmail, givenName: commonGiven, familyName: commonFamily, name: commonName, groups: commonGroups}
	case tenants.PresetOneLogin:
		return preset{
			email:      join([]string{"User.email", "User.Username"}, commonEmail),
			givenName:  join([]string{"User.FirstName"}, commonGiven),
			familyName: join([]string{"User.LastName"}, commonFamily),
			name:       join([]string{"User.DisplayName"}, commonName),
			groups:     join([]string{"memberOf", "User.memberOf", "roles"}, commonGroups),
		}
	case tenants.PresetPing:
		// PingFederate and PingOne: LDAP-style names, plus PingOne's
		// subject attribute.
		return preset{
			email:      join([]string{"mail", "email", "subject", "saml_subject"}, commonEmail),
			givenName:  join([]string{"givenName", "firstname"}, commonGiven),
			familyName: join([]string{"sn", "lastname"}, commonFamily),
			name:       join([]string{"displayName", "cn"}, commonName),
			groups:     join([]string{"memberOf", "isMemberOf", "group", "groups"}, commonGroups),
		}
	default:
		return preset{
			// Not eduPersonPrincipalName: it looks like an address but is a
			// scoped login name, often without a mailbox behind it.
			email:      commonEmail,
			givenName:  commonGiven,
			familyName: commonFamily,
			name:       commonName,
			groups:     join(commonGroups, []string{msGroups, msRole}),
		}
	}
}

// MapProfile maps a NameID and attributes to a Profile with a preset; a
// non-empty field of overrides replaces the preset's choice for that field.
//
// Rules:
//   - Attribute names match case-insensitively (IdPs vary in case).
//   - Subject: the override attribute if set (and nothing else), else the
//     preset's subject attribute (Entra: objectidentifier), else the NameID
//     unless it is transient, else a stable attribute (subject-id,
//     pairwise-id, eduPersonUniqueId, eduPersonPrincipalName,
//     eduPersonTargetedID). Empty means the assertion carries no usable
//     subject, and ValidateResponse rejects it.
//   - Email: the first candidate whose value is an email address, else the
//     NameID when it is an email address and its format is emailAddress,
//     unspecified (SAML 1.0 or 1.1 URI) or absent (a persistent or transient NameID is an opaque
//     identifier even when it looks like an address). Normalized with
//     tenants.ParseEmail.
//   - Name: the name attribute, else "given family".
//   - Groups: the values of every group attribute, de-duplicated in order.
//   - Attributes: every attribute, Name -> values.
func MapProfile(p tenants.Preset, overrides tenants.AttributeMapping, nameID, nameIDFormat string, attrs map[string][]string) tenants.Profile {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]attribute, 0, len(names))
	for _, n := range names {
		list = append(list, attribute{Name: n, Values: attrs[n]})
	}
	return mapProfile(p, overrides, nameID, nameIDFormat, list)
}

// mapProfile is MapProfile on the attributes as the assertion carried them,
// so that FriendlyName can match too.
func mapProfile(p tenants.Preset, overrides tenants.AttributeMapping, nameID, nameIDFormat string, attrs []attribute) tenants.Profile {
	ps := presetFor(p)
	idx := newAttrIndex(attrs)
	prof := tenants.Profile{NameID: nameID, NameIDFormat: nameIDFormat}

	if len(attrs) > 0 {
		prof.Attributes = make(map[string][]string, len(attrs))
		for _, a := range attrs {
			key := a.Name
			if key == "" {
				key = a.FriendlyName
			}
			prof.Attributes[key] = append(prof.Attributes[key], a.Values...)
		}
	}

	switch {
	case overrides.Subject != "":
		prof.Subject = idx.first(overrides.Subject)
	default:
		prof.Subject = idx.firstOf(ps.subject)
		if prof.Subject == "" && nameID != "" && nameIDFormat != transientNameIDFormat {
			prof.Subject = nameID
		}
		if prof.Subject == "" {
			prof.Subject = idx.firstOf(stableSubjects)
		}
	}

	emailCandidates := ps.email
	if overrides.Email != "" {
		emailCandidates = []string{overrides.Email}
	}
	prof.Email = idx.firstEmail(emailCandidates)
	if prof.Email == "" && nameIDMayBeEmail(nameIDFormat) {
		if e, err := tenants.ParseEmail(nameID); err == nil {
			prof.Email = e.Address
		}
	}

	prof.GivenName = idx.firstOf(pick(overrides.GivenName, ps.givenName))
	prof.FamilyName = idx.firstOf(pick(overrides.FamilyName, ps.familyName))
	prof.Name = idx.firstOf(pick(overrides.Name, ps.name))
	if prof.Name == "" {
		prof.Name = strings.TrimSpace(prof.GivenName + " " + prof.FamilyName)
	}
	prof.Groups = idx.all(pick(overrides.Groups, ps.groups))
	prof.GroupsOverage = idx.firstOf(ps.overage)
	return prof
}

// nameIDMayBeEmail: emailAddress, unspecified (IdPs write the SAML 1.0 and
// 1.1 URIs alike) or no Format.
func nameIDMayBeEmail(format string) bool {
	return format == nameIDFormatNone ||
		strings.HasSuffix(format, ":nameid-format:emailAddress") ||
		strings.HasSuffix(format, ":nameid-format:unspecified")
}

func pick(override string, preset []string) []string {
	if override != "" {
		return []string{override}
	}
	return preset
}

// attrIndex finds attributes by Name, then by FriendlyName, ignoring case.
type attrIndex struct {
	byName     map[string][]int
	byFriendly map[string][]int
	attrs      []attribute
}

func newAttrIndex(attrs []attribute) *attrIndex {
	ix := &attrIndex{byName: map[string][]int{}, byFriendly: map[string][]int{}, attrs: attrs}
	for i, a := range attrs {
		ix.byName[strings.ToLower(a.Name)] = append(ix.byName[strings.ToLower(a.Name)], i)
		if a.FriendlyName != "" {
			ix.byFriendly[strings.ToLower(a.FriendlyName)] = append(ix.byFriendly[strings.ToLower(a.FriendlyName)], i)
		}
	}
	return ix
}

// values returns the trimmed, non-empty values of the attributes called
// name.
func (ix *attrIndex) values(name string) []string {
	key := strings.ToLower(name)
	hits := ix.byName[key]
	if len(hits) == 0 {
		hits = ix.byFriendly[key]
	}
	var out []string
	for _, i := range hits {
		for _, v := range ix.attrs[i].Values {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

func (ix *attrIndex) first(name string) string {
	if v := ix.values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (ix *attrIndex) firstOf(names []string) string {
	for _, n := range names {
		if v := ix.first(n); v != "" {
			return v
		}
	}
	return ""
}

func (ix *attrIndex) firstEmail(names []string) string {
	for _, n := range names {
		for _, v := range ix.values(n) {
			if e, err := tenants.ParseEmail(v); err == nil {
				return e.Address
			}
		}
	}
	return ""
}

func (ix *attrIndex) all(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		for _, v := range ix.values(n) {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}
