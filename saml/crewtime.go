package saml

import (
	"sync"
	"time"

	crewsaml "github.com/crewjam/saml"
)

// crewjam keeps its time settings in package globals (TimeNow, Clock,
// MaxIssueDelay, MaxClockSkew), so they cannot vary per connection. This
// file is the only place that touches them.
//
// The choice: our own checks (checks.go), run with each ServiceProvider's
// Options.Clock, ClockSkew and MaxResponseAge, are authoritative and run
// before crewjam's. crewjam's checks stay on as a coarse outer fence on the
// wall clock, widened once, here, to the largest leeway any Options may ask
// for, so that they can never reject what our per-connection checks accept.
// crewjam's dsig Clock stays nil: our SignatureVerifier builds its own
// validation context with the per-call time, so certificate validity is
// checked against Options.Clock too.
func init() {
	crewsaml.MaxClockSkew = MaxClockSkew
	crewsaml.MaxIssueDelay = MaxResponseAgeLimit + MaxClockSkew
}

// crewjamClockMu serializes everything that moves crewjam's clock. Only
// tests (fixtures captured years ago, fixed simulator clocks) do; they go
// through withCrewjamNow and do not run in parallel.
var crewjamClockMu sync.Mutex

// withCrewjamNow runs fn with crewjam's TimeNow pinned to now. It is meant
// for tests; production keeps crewjam on the wall clock.
func withCrewjamNow(now time.Time, fn func()) {
	crewjamClockMu.Lock()
	defer crewjamClockMu.Unlock()
	saved := crewsaml.TimeNow
	crewsaml.TimeNow = func() time.Time { return now }
	defer func() { crewsaml.TimeNow = saved }()
	fn()
}
