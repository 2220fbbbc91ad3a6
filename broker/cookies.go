package broker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"
)

// cookies issues and checks the hosted page's cookies. Everything is
// stateless, MACed with a key every replica shares (derived from the
// master key), so any replica can serve any step of a login.
type cookies struct {
	key    []byte
	secure bool // issuer is https: Secure cookies with the __Host- prefix
}

const nonceCookie = "ssob_nonce"

// name adds the __Host- prefix over https: such a cookie cannot be set by
// a sibling subdomain or for another path.
func (c cookies) name(base string) string {
	if c.secure {
		return "__Host-" + base
	}
	return base
}

func (c cookies) mac(parts ...string) string {
	m := hmac.New(sha256.New, c.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c cookies) set(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name(name), Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

// nonce returns the browser's CSRF nonce, setting a new one if it has none.
func (c cookies) nonce(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(c.name(nonceCookie)); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	c.set(w, nonceCookie, v, 24*time.Hour)
	return v
}

// csrfToken is the hosted page's form token: bound to this browser's nonce
// cookie and to one login, so a page from another browser or login does not
// validate (double-submit with a MAC, nothing stored).
func (c cookies) csrfToken(nonce, loginID string) string {
	return c.mac("csrf", nonce, loginID)
}

// checkCSRF verifies a submitted form token against the browser's cookie.
func (c cookies) checkCSRF(r *http.Request, loginID, token string) bool {
	ck, err := r.Cookie(c.name(nonceCookie))
	if err != nil || token == "" {
		return false
	}
	return hmac.Equal([]byte(token), []byte(c.csrfToken(ck.Value, loginID)))
}
