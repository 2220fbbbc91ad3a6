// Package seal encrypts secrets at rest (SP private keys, OIDC signing keys)
// with the operator's master key, using AES-256-GCM.
//
// A sealed value names the key that sealed it, so the master key can be
// rotated: configure the new key as current and the old one as previous,
// run `ssobroker rotate-master-key` to re-seal everything, then drop the old
// key. Each value is bound to where it is stored (the associated data, e.g.
// "connections.sp_key:conn_..."), so a sealed blob copied into another row
// does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeySize is the master key length in bytes (AES-256).
const KeySize = 32

const version = "v1"

var (
	// ErrUnknownKey means the value was sealed with a key that is not
	// configured (neither current nor previous).
	ErrUnknownKey = errors.New("sealed with an unknown master key")
	// ErrCorrupt means the value is malformed, was altered, or belongs to
	// another row.
	ErrCorrupt = errors.New("sealed value is corrupt or bound to another record")
)

// Keyring seals with its current key and opens with any configured key.
type Keyring struct {
	currentID string
	aeads     map[string]cipher.AEAD
	random    io.Reader
}

// NewKeyring builds a keyring from the current master key and any previous
// ones still needed to open old values. random may be nil (crypto/rand).
func NewKeyring(current []byte, previous [][]byte, random io.Reader) (*Keyring, error) {
	if random == nil {
		random = rand.Reader
	}
	k := &Keyring{aeads: map[string]cipher.AEAD{}, random: random}
	id, err := k.add(current)
	if err != nil {
		return nil, fmt.Errorf("current master key: %w", err)
	}
	k.currentID = id
	for i, p := range previous {
		if _, err := k.add(p); err != nil {
			return nil, fmt.Errorf("previous master key %d: %w", i+1, err)
		}
	}
	return k, nil
}

func (k *Keyring) add(key []byte) (string, error) {
	if len(key) != KeySize {
		return "", fmt.Errorf("must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", fmt.Errorf("gcm: %w", err)
	}
	id := KeyID(key)
	k.aeads[id] = aead
	return id, nil
}

// KeyID is the public name of a master key: the first 8 bytes of its
// SHA-256, hex. It identifies the key without revealing it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("ssobroker master key id\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// CurrentKeyID names the key new values are sealed with.
func (k *Keyring) CurrentKeyID() string { return k.currentID }

// Seal encrypts plaintext for the record named by aad.
func (k *Keyring) Seal(plaintext []byte, aad string) (string, error) {
	aead := k.aeads[k.currentID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(k.random, nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	ct := aead.Seal(nonce, nonce, plaintext, []byte(aad))
	return version + "." + k.currentID + "." + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open decrypts a value sealed for aad.
func (k *Keyring) Open(sealed, aad string) ([]byte, error) {
	_, keyID, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("open: key %s: %w", keyID, ErrUnknownKey)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("open: %w", ErrCorrupt)
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrCorrupt)
	}
	return pt, nil
}

// SealedWith returns the key id a value was sealed with.
func SealedWith(sealed string) (string, error) {
	_, id, _, err := split(sealed)
	return id, err
}

func split(sealed string) (ver, keyID, body string, err error) {
	parts := strings.SplitN(sealed, ".", 3)
	if len(parts) != 3 || parts[0] != version || parts[1] == "" {
		return "", "", "", fmt.Errorf("open: unrecognized format: %w", ErrCorrupt)
	}
	return parts[0], parts[1], parts[2], nil
}

// ParseKey decodes a master key given as base64 (standard or URL-safe,
// padded or not) or as 64 hex characters.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("master key must decode to %d bytes, got %d", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("master key must be 32 bytes as base64 or 64 hex characters")
}

// NewKey returns a fresh random master key, base64-encoded.
func NewKey(random io.Reader) (string, error) {
	if random == nil {
		random = rand.Reader
	}
	b := make([]byte, KeySize)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("new master key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
