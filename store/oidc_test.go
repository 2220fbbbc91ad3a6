package store_test

import (
	"testing"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/storetest"
)

var _ oidcprovider.Store = (*store.Store)(nil)

func TestOIDCConformance(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			storetest.RunOIDC(t, b)
		})
	}
}
