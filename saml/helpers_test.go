package saml

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// testNow is the fixed "now" of simulator-based tests.
var testNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// detRandom is a deterministic byte stream for reproducible IDs and
// serials.
func detRandom(seed string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte(seed)))
}

func readKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseRSAPrivateKey(tenants.Secret(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

func keyPEM(t testing.TB, k *rsa.PrivateKey) tenants.Secret {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return tenants.Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// testCert makes a deterministic self-signed certificate for key.
func testCert(t testing.TB, key *rsa.PrivateKey, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	sum := sha256.Sum256([]byte(cn))
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(sum[:16]),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(detRandom(cn), tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	certFrom = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	certTo   = time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)
)

// memReplay is an in-memory ReplayCache.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newMemReplay() *memReplay { return &memReplay{seen: map[string]time.Time{}} }

func (m *memReplay) AcceptOnce(_ context.Context, conn, id string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := conn + "\x00" + id
	if _, ok := m.seen[k]; ok {
		return fmt.Errorf("assertion %s: %w", id, tenants.ErrAlreadyExists)
	}
	m.seen[k] = exp
	return nil
}

// acceptAll is a ReplayCache that never refuses (benchmarks, fuzzing).
type acceptAll struct{}

func (acceptAll) AcceptOnce(context.Context, string, string, time.Time) error { return nil }

// testEnv is one tenant's connection to a simulated IdP.
type testEnv struct {
	clock  *fixedClock
	sim    *Simulator
	sp     *ServiceProvider
	conn   tenants.Connection
	replay *memReplay
}

type envConfig struct {
	idpKey, spKey string // key names in testdata/keys
	idpBase       string
	connID        string
	conn          func(*tenants.Connection)
}

func newTestEnv(t testing.TB, mods ...func(*tenants.Connection)) *testEnv {
	t.Helper()
	return newEnv(t, envConfig{idpKey: "idp-a", spKey: "sp", idpBase: "https://idp-a.example.com/sim", connID: "conn_a", conn: func(c *tenants.Connection) {
		for _, m := range mods {
			m(c)
		}
	}})
}

func newEnv(t testing.TB, cfg envConfig) *testEnv {
	t.Helper()
	clock := &fixedClock{t: testNow}
	idpKey := readKey(t, cfg.idpKey)
	sim, err := NewSimulator(SimulatorConfig{
		BaseURL: cfg.idpBase, Key: idpKey, Certificate: testCert(t, idpKey, cfg.idpKey, certFrom, certTo),
		WrongKey: readKey(t, "attacker"), Clock: clock, Random: detRandom("sim-" + cfg.idpKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	spKey := readKey(t, cfg.spKey)
	conn := tenants.Connection{
		ID: cfg.connID, TenantID: "ten_" + cfg.connID, Name: cfg.connID, Status: tenants.StatusActive,
		Preset: tenants.PresetOkta, IdP: sim.IdPConfig(),
		SPKey: keyPEM(t, spKey), SPCertificate: tenants.CertificatePEM(testCert(t, spKey, cfg.spKey, certFrom, certTo)),
		CreatedAt: testNow, UpdatedAt: testNow,
	}
	if cfg.conn != nil {
		cfg.conn(&conn)
	}
	sp, err := NewServiceProvider(conn, Options{BaseURL: "https://sso.example.com", Clock: clock, Random: detRandom("sp-" + cfg.connID)})
	if err != nil {
		t.Fatal(err)
	}
	md, err := sp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.RegisterServiceProvider(md); err != nil {
		t.Fatal(err)
	}
	return &testEnv{clock: clock, sim: sim, sp: sp, conn: conn, replay: newMemReplay()}
}

// request runs NewAuthnRequest through the simulator's parser.
func (e *testEnv) request(t testing.TB) AuthnRequestInfo {
	t.Helper()
	req, err := e.sp.NewAuthnRequest("relay-1", false)
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.sim.ParseAuthnRequest(httptest.NewRequest("GET", req.RedirectURL, nil))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != req.ID {
		t.Fatalf("simulator parsed ID %q, want %q", info.ID, req.ID)
	}
	return info
}

// login returns a fresh request ID and the simulator's response to it.
func (e *testEnv) login(t testing.TB, user SimulatedUser, sc Scenario) (requestID string, xml []byte) {
	t.Helper()
	info := e.request(t)
	b64, err := e.sim.Respond(info, user, sc)
	if err != nil {
		t.Fatal(err)
	}
	xml, err = DecodeResponse(b64, 0)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID, xml
}

// validate runs ValidateResponse with crewjam's clock pinned to the SP's.
func (e *testEnv) validate(xml []byte, requestID string) (p tenants.Profile, err error) {
	withCrewjamNow(e.clock.Now(), func() {
		p, err = e.sp.ValidateResponse(context.Background(), xml, requestID, e.replay)
	})
	return p, err
}

// wantReason fails unless err is a *RejectError with reason want ("" for
// no error).
func wantReason(t testing.TB, err error, want Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		return
	}
	var rerr *RejectError
	if !errors.As(err, &rerr) {
		t.Fatalf("want reason %s, got %v", want, err)
	}
	if rerr.Reason != want {
		t.Fatalf("want reason %s, got %s (%s)", want, rerr.Reason, rerr.Detail)
	}
	if !rerr.Reason.Valid() {
		t.Fatalf("reason %q is not in the closed set", rerr.Reason)
	}
	if strings.Contains(rerr.Detail, "<saml") || strings.Contains(rerr.Detail, "SignatureValue") {
		t.Fatalf("detail leaks XML: %s", rerr.Detail)
	}
}

func alice() SimulatedUser { return DefaultSimulatedUser() }
