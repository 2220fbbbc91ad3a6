package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	old, err := NewKeyring(testKey(1), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealedOld, err := old.Seal([]byte("private key"), "connections.sp_key:conn_1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealedOld, "private key") {
		t.Fatalf("sealed value contains the plaintext: %s", sealedOld)
	}
	rotated, err := NewKeyring(testKey(2), [][]byte{testKey(1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, err := NewKeyring(testKey(2), nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		ring    *Keyring
		sealed  string
		aad     string
		want    string
		wantErr error
	}{
		{"same key", old, sealedOld, "connections.sp_key:conn_1", "private key", nil},
		{"previous key after rotation", rotated, sealedOld, "connections.sp_key:conn_1", "private key", nil},
		{"old key dropped", onlyNew, sealedOld, "connections.sp_key:conn_1", "", ErrUnknownKey},
		{"moved to another row", old, sealedOld, "connections.sp_key:conn_2", "", ErrCorrupt},
		{"tampered", old, sealedOld[:len(sealedOld)-2] + "AA", "connections.sp_key:conn_1", "", ErrCorrupt},
		{"garbage", old, "not sealed", "x", "", ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ring.Open(tt.sealed, tt.aad)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("Open = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSealUsesCurrentKey(t *testing.T) {
	ring, err := NewKeyring(testKey(2), [][]byte{testKey(1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ring.Seal([]byte("x"), "a")
	if err != nil {
		t.Fatal(err)
	}
	id, err := SealedWith(s)
	if err != nil || id != KeyID(testKey(2)) || id != ring.CurrentKeyID() {
		t.Fatalf("SealedWith = %q, %v; want current key %q", id, err, KeyID(testKey(2)))
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", false},
		{"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE", false},
		{strings.Repeat("ab", 32), false},
		{"c2hvcnQ=", true},
		{"", true},
		{"%%%", true},
	}
	for _, tt := range tests {
		_, err := ParseKey(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseKey(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
		}
	}
}
