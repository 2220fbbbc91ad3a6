package saml

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestMetadataFetcher(t *testing.T) {
	body := `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>`
	mux := http.NewServeMux()
	mux.HandleFunc("/md", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(strings.Repeat("x", 4096))) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/to-imds", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	mux.HandleFunc("/to-imds-https", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	mux.HandleFunc("/to-private", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://10.0.0.1/md", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	plain := httptest.NewServer(mux)
	defer plain.Close()
	localhostURL := strings.Replace(tlsSrv.URL, "127.0.0.1", "localhost", 1)

	ctx := context.Background()
	dev := &MetadataFetcher{HTTPClient: tlsSrv.Client(), AllowLoopbackHTTP: true}
	prod := &MetadataFetcher{HTTPClient: tlsSrv.Client()}
	for _, tc := range []struct {
		name string
		f    *MetadataFetcher
		url  string
		want string // "" means success
	}{
		{"https loopback in dev", dev, tlsSrv.URL + "/md", ""},
		{"http loopback in dev", dev, plain.URL + "/md", ""},
		{"loopback refused in production", prod, tlsSrv.URL + "/md", "loopback address (SSRF guard)"},
		{"name resolving to loopback refused at dial", prod, localhostURL + "/md", "loopback address (SSRF guard)"},
		{"http refused", prod, "http://idp.example.com/md", "must use https"},
		{"http to loopback refused in production", prod, plain.URL + "/md", "must use https"},
		{"file scheme", dev, "file:///etc/passwd", "not an absolute URL"},
		{"ftp scheme", dev, "ftp://idp.example.com/md", "must use https"},
		{"user info", dev, "https://u:p@idp.example.com/md", "user info"},
		{"redirect to metadata service over http", dev, tlsSrv.URL + "/to-imds", "must use https"},
		{"redirect to metadata service over https", dev, tlsSrv.URL + "/to-imds-https", "link-local address (SSRF guard)"},
		{"redirect to private network", dev, tlsSrv.URL + "/to-private", "private address (SSRF guard)"},
		{"redirect loop", dev, tlsSrv.URL + "/loop", "redirects"},
		{"not found", dev, tlsSrv.URL + "/missing", "404"},
		{"too big", &MetadataFetcher{HTTPClient: tlsSrv.Client(), AllowLoopbackHTTP: true, MaxBytes: 1024}, tlsSrv.URL + "/big", "larger than the 1024-byte limit"},
		{"timeout", &MetadataFetcher{HTTPClient: tlsSrv.Client(), AllowLoopbackHTTP: true, Timeout: 100 * time.Millisecond}, tlsSrv.URL + "/slow", "deadline exceeded"},
		{"custom round tripper refused", &MetadataFetcher{HTTPClient: &http.Client{Transport: roundTripFunc(nil)}}, "https://idp.example.com/md", "must be an *http.Transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.Fetch(ctx, tc.url)
			if tc.want == "" {
				if err != nil || string(got) != body {
					t.Fatalf("%q %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestForbiddenAddresses(t *testing.T) {
	strict, lan, dev := &MetadataFetcher{}, &MetadataFetcher{AllowPrivateNetworks: true}, &MetadataFetcher{AllowLoopbackHTTP: true}
	for _, tc := range []struct {
		ip               string
		strict, lan, dev string
	}{
		{"8.8.8.8", "", "", ""},
		{"2606:4700::1111", "", "", ""},
		{"127.0.0.1", "loopback", "loopback", ""},
		{"::1", "loopback", "loopback", ""},
		{"::ffff:127.0.0.1", "loopback", "loopback", ""},
		{"0.0.0.0", "unspecified", "unspecified", "unspecified"},
		{"169.254.169.254", "link-local", "", "link-local"},
		{"fe80::1", "link-local", "", "link-local"},
		{"10.1.2.3", "private", "", "private"},
		{"192.168.1.1", "private", "", "private"},
		{"172.16.0.1", "private", "", "private"},
		{"fd00:ec2::254", "private", "", "private"},
		{"100.100.100.200", "special-purpose", "", "special-purpose"},
		{"192.0.0.192", "special-purpose", "", "special-purpose"},
		{"168.63.129.16", "special-purpose", "", "special-purpose"},
		{"64:ff9b::a00:1", "special-purpose", "", "special-purpose"},
		{"2002:a00:1::", "special-purpose", "", "special-purpose"},
		{"224.0.0.1", "multicast", "multicast", "multicast"},
		{"255.255.255.255", "special-purpose", "", "special-purpose"},
	} {
		ip := netip.MustParseAddr(tc.ip)
		for _, c := range []struct {
			f    *MetadataFetcher
			want string
		}{{strict, tc.strict}, {lan, tc.lan}, {dev, tc.dev}} {
			if got := c.f.forbidden(ip); got != c.want {
				t.Errorf("%s with %+v: %q, want %q", tc.ip, *c.f, got, c.want)
			}
		}
	}
}
