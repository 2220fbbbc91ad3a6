package saml

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// MetadataFetcher downloads IdP metadata from a URL a tenant admin typed.
// That URL is attacker-controlled input, so the fetcher is an SSRF guard
// first: https only (http only to loopback, for local IdPs, when allowed),
// no private, link-local or cloud metadata addresses, checked on the IP
// actually dialled (so DNS rebinding cannot slip past a check made on the
// name), redirects held to the same rules, no proxy, a timeout and a body
// cap.
type MetadataFetcher struct {
	// HTTPClient, if set, supplies the TLS configuration (tests trust a
	// local CA with it). Its Transport must be an *http.Transport: it is
	// cloned, its proxy removed and its dialer replaced by the guarded one.
	HTTPClient *http.Client
	// MaxBytes caps the body; default MaxMetadataBytes (1 MiB).
	MaxBytes int64
	// Timeout bounds the whole fetch, redirects included; default 10s.
	Timeout time.Duration
	// AllowLoopbackHTTP permits http:// and connections to loopback
	// addresses (development only).
	AllowLoopbackHTTP bool
	// AllowPrivateNetworks permits private, link-local and other
	// non-public addresses (an on-premises IdP reached over a VPN).
	AllowPrivateNetworks bool
}

const (
	defaultFetchTimeout = 10 * time.Second
	maxFetchRedirects   = 5
)

// Fetch GETs the metadata document at rawURL. It does not parse it; pass
// the result to ParseIdPMetadata.
func (f *MetadataFetcher) Fetch(ctx context.Context, rawURL string) ([]byte, error) {
	if err := f.checkURL(rawURL); err != nil {
		return nil, err
	}
	client, err := f.client()
	if err != nil {
		return nil, err
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = defaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("saml: metadata URL %q: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("saml: fetching metadata from %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("saml: fetching metadata from %s: HTTP status %s", rawURL, resp.Status)
	}
	limit := f.MaxBytes
	if limit <= 0 {
		limit = MaxMetadataBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("saml: reading metadata from %s: %w", rawURL, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("saml: metadata at %s is larger than the %d-byte limit", rawURL, limit)
	}
	return body, nil
}

func (f *MetadataFetcher) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("saml: metadata URL %q is not an absolute URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("saml: metadata URL %q must not carry user info", raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && f.AllowLoopbackHTTP && tenants.IsLoopbackHost(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("saml: metadata URL %q must use https", raw)
	}
}

func (f *MetadataFetcher) client() (*http.Client, error) {
	var base *http.Transport
	var c http.Client
	if f.HTTPClient != nil {
		c = *f.HTTPClient
		switch t := f.HTTPClient.Transport.(type) {
		case nil:
		case *http.Transport:
			base = t
		default:
			return nil, fmt.Errorf("saml: MetadataFetcher.HTTPClient.Transport is %T; it must be an *http.Transport so the address guard can be installed", t)
		}
	}
	var t *http.Transport
	if base != nil {
		t = base.Clone()
	} else {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	// A proxy would make the proxy's address the one we check.
	t.Proxy = nil
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: f.control}
	t.DialContext = dialer.DialContext
	t.DialTLSContext = nil
	c.Transport = t
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxFetchRedirects {
			return fmt.Errorf("more than %d redirects", maxFetchRedirects)
		}
		return f.checkURL(req.URL.String())
	}
	c.Jar = nil
	return &c, nil
}

// control runs after DNS resolution, on the address about to be dialled.
func (f *MetadataFetcher) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("saml: refusing to dial %q: %w", address, err)
	}
	if why := f.forbidden(ap.Addr()); why != "" {
		return &net.AddrError{Err: "refusing to connect to a " + why + " address (SSRF guard)", Addr: ap.Addr().String()}
	}
	return nil
}

// forbidden says why an address may not be dialled, or "".
func (f *MetadataFetcher) forbidden(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		if f.AllowLoopbackHTTP {
			return ""
		}
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast(), ip.IsLinkLocalMulticast():
		return "multicast"
	}
	if f.AllowPrivateNetworks {
		return ""
	}
	switch {
	case ip.IsLinkLocalUnicast():
		// 169.254.169.254 (AWS, GCP, Azure, OpenStack metadata) lives here.
		return "link-local"
	case ip.IsPrivate():
		// Includes fd00:ec2::254, AWS's IPv6 metadata address.
		return "private"
	}
	for _, p := range specialPrefixes {
		if p.Contains(ip) {
			return "special-purpose"
		}
	}
	return ""
}

// specialPrefixes are IANA special-purpose ranges that are not reachable
// public hosts, plus cloud platform endpoints outside them.
var specialPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",        // "this network"
		"100.64.0.0/10",    // shared address space (CGNAT); Alibaba metadata 100.100.100.200
		"192.0.0.0/24",     // IETF protocol assignments; Oracle Cloud metadata 192.0.0.192
		"192.0.2.0/24",     // TEST-NET-1
		"198.18.0.0/15",    // benchmarking
		"198.51.100.0/24",  // TEST-NET-2
		"203.0.113.0/24",   // TEST-NET-3
		"240.0.0.0/4",      // reserved, and 255.255.255.255
		"168.63.129.16/32", // Azure WireServer
		"64:ff9b::/96",     // NAT64: would reach any IPv4 address, private ones too
		"64:ff9b:1::/48",   // local-use NAT64
		"100::/64",         // discard-only
		"2001::/23",        // IETF protocol assignments (Teredo among them)
		"2001:db8::/32",    // documentation
		"2002::/16",        // 6to4: embeds any IPv4 address
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()
