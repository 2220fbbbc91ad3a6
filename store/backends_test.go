package store_test

import (
	"testing"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestConformance runs the whole conformance suite on every backend.
// PostgreSQL needs SSOBROKER_TEST_DATABASE_URL (see scripts/pg-throwaway);
// without it the test fails rather than skips.
func TestConformance(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, b)
		})
	}
}
