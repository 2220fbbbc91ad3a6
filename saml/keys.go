package saml

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// spKeyBits is the size of generated SP keys. Since Go 1.26 rsa.GenerateKey
// ignores its random argument (see testing/cryptotest for deterministic
// tests), so only the certificate serial comes from the caller's reader.
const spKeyBits = 2048

// spCertValidity is how long a generated SP certificate is valid. IdPs pin
// the certificate from our metadata and most of them never check its dates;
// a long life avoids a forced rotation that every tenant's IT admin would
// have to follow.
const spCertValidity = 10 * 365 * 24 * time.Hour

// GenerateSPKey creates a connection's SP key pair: an RSA-2048 private key
// in PKCS#8 PEM and a self-signed certificate valid for ten years from an
// hour before now (to absorb IdP clock skew).
func GenerateSPKey(random io.Reader, now time.Time, commonName string) (key tenants.Secret, certPEM string, err error) {
	if random == nil {
		random = rand.Reader
	}
	commonName = strings.TrimSpace(commonName)
	if commonName == "" || len(commonName) > 64 {
		return "", "", fmt.Errorf("saml.GenerateSPKey: common name must be 1 to 64 bytes")
	}
	priv, err := rsa.GenerateKey(random, spKeyBits)
	if err != nil {
		return "", "", fmt.Errorf("saml.GenerateSPKey: %w", err)
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", fmt.Errorf("saml.GenerateSPKey: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:              now.Add(spCertValidity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", fmt.Errorf("saml.GenerateSPKey: certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("saml.GenerateSPKey: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return tenants.Secret(keyPEM), certPEM, nil
}

// parseRSAPrivateKey reads a PKCS#8 or PKCS#1 PEM RSA key. The SP key must
// be RSA: crewjam decrypts EncryptedAssertions with RSA only.
func parseRSAPrivateKey(s tenants.Secret) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s.Reveal())))
	if block == nil {
		return nil, errors.New("SP key is not PEM")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("SP key is not a valid PKCS#8 key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("SP key is %T, want RSA", k)
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("SP key is not a valid PKCS#1 key")
		}
		return k, nil
	default:
		return nil, fmt.Errorf("SP key PEM block is %q, want PRIVATE KEY", block.Type)
	}
}

// CertificateInfo describes one IdP signing certificate for the operator.
type CertificateInfo struct {
	Subject           string
	SHA256Fingerprint string // upper-case hex pairs separated by colons, as IdP consoles show it
	NotBefore         time.Time
	NotAfter          time.Time
	Expired           bool
	ExpiresSoon       bool // not expired, but NotAfter is within soon of now
}

// InspectCertificates reports the validity of every configured IdP signing
// certificate, so that expired or soon-expiring ones can be shown on the
// connection before logins start failing with untrusted_certificate.
// Certificates that do not parse (ValidateIdPConfig rejects them) are
// reported with only their Subject set to the parse error.
func InspectCertificates(idp tenants.IdPConfig, now time.Time, soon time.Duration) []CertificateInfo {
	out := make([]CertificateInfo, 0, len(idp.Certificates))
	for _, pemText := range idp.Certificates {
		c, err := tenants.ParseCertificate(pemText)
		if err != nil {
			out = append(out, CertificateInfo{Subject: "invalid certificate: " + err.Error()})
			continue
		}
		info := CertificateInfo{
			Subject:           c.Subject.String(),
			SHA256Fingerprint: fingerprint(c),
			NotBefore:         c.NotBefore,
			NotAfter:          c.NotAfter,
			Expired:           now.After(c.NotAfter),
		}
		info.ExpiresSoon = !info.Expired && c.NotAfter.Sub(now) <= soon
		out = append(out, info)
	}
	return out
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("%s (SHA-256 %s, valid %s to %s)", q(c.Subject.String()), fingerprint(c), stamp(c.NotBefore), stamp(c.NotAfter))
}
