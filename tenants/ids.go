package tenants

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"
)

// ID prefixes make ids self-describing in logs and support tickets.
const (
	PrefixTenant     = "ten_"
	PrefixConnection = "conn_"
	PrefixClient     = "cli_"
	PrefixIdentity   = "usr_"
	PrefixAudit      = "evt_"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix + 26 characters: 48 bits of milliseconds then 80
// random bits, so ids sort by creation time (cursor pagination follows
// creation order) and cannot be guessed.
func NewID(prefix string, now time.Time, random io.Reader) (string, error) {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	if _, err := io.ReadFull(random, b[6:]); err != nil {
		return "", fmt.Errorf("tenants.NewID: reading randomness: %w", err)
	}
	return prefix + idEncoding.EncodeToString(b[:]), nil
}

// NewToken returns prefix + 43 characters of base64url carrying 256 random
// bits: for secrets, login ids and anything else that must be unguessable.
func NewToken(prefix string, random io.Reader) (Secret, error) {
	var b [32]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("tenants.NewToken: reading randomness: %w", err)
	}
	return Secret(prefix + base64.RawURLEncoding.EncodeToString(b[:])), nil
}

// Client secret format. The prefix lets secret scanners recognize a leaked
// ssobroker secret.
const clientSecretPrefix = "ssob_cs_"

const hashPrefix = "sha256:"

// HashSecret returns the stored form of a high-entropy secret. A fast hash
// is the right tool here: the secrets are 256 random bits, so there is
// nothing for a slow KDF to protect against, and the token endpoint should
// not spend milliseconds on bcrypt per request.
func HashSecret(s Secret) string {
	sum := sha256.Sum256([]byte(s.Reveal()))
	return hashPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// SecretMatches compares a presented secret with a stored hash in constant
// time.
func SecretMatches(hash string, presented Secret) bool {
	if hash == "" || !strings.HasPrefix(hash, hashPrefix) {
		// Still do the work so the time does not tell whether a hash exists.
		_ = HashSecret(presented)
		return false
	}
	got := HashSecret(presented)
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// decodeBase64Loose decodes standard base64 that may be wrapped over lines,
// as certificates copied from IdP consoles are.
func decodeBase64Loose(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}
