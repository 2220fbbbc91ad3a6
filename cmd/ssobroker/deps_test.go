package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ssobroker/ssobroker"

// TestDependencyDirection keeps the layering of architecture.md true:
// data flows cmd -> broker -> {oidcprovider, saml, tenants}; store
// implements the interfaces of its consumers; no package reaches back.
func TestDependencyDirection(t *testing.T) {
	tests := []struct {
		pkg string
		bad map[string]string // dependency -> why it is forbidden
	}{
		{"tenants", map[string]string{
			module + "/store": "tenants declares the interfaces the store implements", module + "/broker": "layering",
			module + "/saml": "tenants is below saml", module + "/oidcprovider": "tenants is below oidcprovider",
		}},
		{"audit", map[string]string{
			module + "/store": "audit is a leaf of types", module + "/broker": "audit is a leaf of types", module + "/tenants": "audit is a leaf of types",
		}},
		{"saml", map[string]string{
			module + "/oidcprovider": "saml and oidcprovider meet only through tenants.Profile",
			module + "/store":        "saml declares ReplayCache; the store implements it",
			module + "/broker":       "layering",
		}},
		{"oidcprovider", map[string]string{
			module + "/saml":   "saml and oidcprovider meet only through tenants.Profile",
			module + "/store":  "oidcprovider declares Store; the store implements it",
			module + "/broker": "layering",
		}},
		{"store", map[string]string{
			module + "/broker": "the store must not know the HTTP app", module + "/saml": "the store persists; it does not parse SAML",
		}},
		{"broker", map[string]string{
			module + "/store": "only cmd wires the store in; broker sees interfaces",
		}},
		{"cmd/ssobroker", map[string]string{
			"testing": "test helpers must not reach the binary", module + "/store/storetest": "test-only package",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", module+"/"+tt.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", tt.pkg, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if why, bad := tt.bad[dep]; bad {
					t.Errorf("%s imports %s: %s", tt.pkg, dep, why)
				}
			}
		})
	}
}
