package tenants

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		err  bool
	}{
		{"plain", "acme.com", "acme.com", false},
		{"upper case and spaces", "  ACME.Com ", "acme.com", false},
		{"trailing dot", "acme.com.", "acme.com", false},
		{"subdomain", "eu.acme.co.uk", "eu.acme.co.uk", false},
		{"registrable under multi-label suffix", "acme.co.uk", "acme.co.uk", false},
		{"unicode to punycode", "bücher.example", "xn--bcher-kva.example", false},
		{"already punycode", "xn--bcher-kva.example", "xn--bcher-kva.example", false},
		{"fullwidth dot mapped", "acme。com", "acme.com", false},
		{"public suffix", "com", "", true},
		{"multi-label public suffix", "co.uk", "", true},
		{"private public suffix", "github.io", "", true},
		{"under private suffix is fine", "acme.github.io", "acme.github.io", false},
		{"single label", "localhost", "", true},
		{"ipv4", "10.0.0.1", "", true},
		{"ipv6 literal", "[::1]", "", true},
		{"numeric tld", "1.2.3", "", true},
		{"empty", "   ", "", true},
		{"label too long", strings.Repeat("a", 64) + ".com", "", true},
		{"name too long", strings.Repeat(strings.Repeat("a", 60)+".", 5) + "com", "", true},
		{"underscore", "ac_me.com", "", true},
		{"leading hyphen", "-acme.com", "", true},
		{"space inside", "ac me.com", "", true},
		{"empty label", "acme..com", "", true},
		{"at sign", "jane@acme.com", "", true},
		{"huge input", strings.Repeat("a", 5000), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeDomain(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("NormalizeDomain(%q) = %q, %v; want error %t", tt.in, got, err, tt.err)
			}
			if err != nil && !errors.Is(err, ErrInvalidDomain) {
				t.Fatalf("error %v does not wrap ErrInvalidDomain", err)
			}
			if got != tt.want {
				t.Fatalf("NormalizeDomain(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEmail(t *testing.T) {
	tests := []struct {
		in         string
		wantAddr   string
		wantDomain string
		err        bool
	}{
		{"jane@acme.com", "jane@acme.com", "acme.com", false},
		{"  Jane.Doe@ACME.com\t", "Jane.Doe@acme.com", "acme.com", false},
		{"jane+tag@mail.acme.co.uk", "jane+tag@mail.acme.co.uk", "mail.acme.co.uk", false},
		{"jürgen@bücher.example", "jürgen@xn--bcher-kva.example", "xn--bcher-kva.example", false},
		{"no-at-sign", "", "", true},
		{"@acme.com", "", "", true},
		{"jane@", "", "", true},
		{"jane doe@acme.com", "", "", true},
		{"jane@com", "", "", true},
		{"jane@10.0.0.1", "", "", true},
		{"<jane@acme.com>", "", "", true},
		{"jane\x00@acme.com", "", "", true},
		{strings.Repeat("a", 65) + "@acme.com", "", "", true},
		{strings.Repeat("a", 2000) + "@acme.com", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEmail(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParseEmail(%q) = %+v, %v; want error %t", tt.in, got, err, tt.err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidEmail) {
					t.Fatalf("error %v does not wrap ErrInvalidEmail", err)
				}
				return
			}
			if got.Address != tt.wantAddr || got.Domain != tt.wantDomain {
				t.Fatalf("ParseEmail(%q) = %+v, want %s / %s", tt.in, got, tt.wantAddr, tt.wantDomain)
			}
		})
	}
}

func TestValidateRedirectURI(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/callback", true},
		{"https://app.example.com:8443/cb?tenant=1", true},
		{"http://127.0.0.1:5555/callback", true},
		{"http://localhost/callback", true},
		{"http://[::1]:8080/cb", true},
		{"http://app.example.com/callback", false},
		{"https://app.example.com/callback#frag", false},
		{"https://app.example.com/callback#", false},
		{"/relative/callback", false},
		{"https://user:pw@app.example.com/cb", false},
		{"https://app.example.com@evil.example/cb", false},
		{"javascript:alert(1)", false},
		{"com.example.app:/callback", false},
		{"https://app.example.com/call back", false},
		{"", false},
		{"https://" + strings.Repeat("a", 3000) + ".com/", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			err := ValidateRedirectURI("redirect_uris[0]", tt.uri)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateRedirectURI(%q) = %v, want ok=%t", tt.uri, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidRedirect) {
				t.Fatalf("error %v does not wrap ErrInvalidRedirect", err)
			}
		})
	}
}

func TestSecretHashing(t *testing.T) {
	s, err := NewToken(clientSecretPrefix, strings.NewReader(strings.Repeat("x", 64)))
	if err != nil {
		t.Fatal(err)
	}
	h := HashSecret(s)
	if strings.Contains(h, s.Reveal()) {
		t.Fatal("hash contains the secret")
	}
	tests := []struct {
		name      string
		hash      string
		presented Secret
		want      bool
	}{
		{"right secret", h, s, true},
		{"wrong secret", h, s + "x", false},
		{"empty hash never matches", "", "", false},
		{"unknown hash format", "md5:abc", s, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SecretMatches(tt.hash, tt.presented); got != tt.want {
				t.Fatalf("SecretMatches = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestSecretIsNotPrinted(t *testing.T) {
	s := Secret("hunter2hunter2")
	for _, got := range []string{s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(got, "hunter2") {
			t.Fatalf("secret printed: %q", got)
		}
	}
	b, _ := s.MarshalText()
	if strings.Contains(string(b), "hunter2") {
		t.Fatalf("secret marshaled: %q", b)
	}
}

// FuzzParseEmail checks the invariants of email normalization on any input:
// no panic, an accepted address is valid UTF-8 and bounded, its domain is
// already normalized (idempotent), and re-parsing gives the same result.
func FuzzParseEmail(f *testing.F) {
	for _, s := range []string{"jane@acme.com", " J@ACME.COM ", "a@bücher.example", "x@co.uk", "@", "a@b@c.com", "a@xn--bcher-kva.example", "a@1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := ParseEmail(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(e.Address) || len(e.Address) > maxEmailLength {
			t.Fatalf("accepted invalid address %q", e.Address)
		}
		d, err := NormalizeDomain(e.Domain)
		if err != nil || d != e.Domain {
			t.Fatalf("domain %q not idempotent: %q, %v", e.Domain, d, err)
		}
		again, err := ParseEmail(e.Address)
		if err != nil || again != e {
			t.Fatalf("re-parse of %q = %+v, %v; want %+v", e.Address, again, err, e)
		}
	})
}
