// Package faulttest holds the fault and process-level tests of the
// ssobroker binary (issue 5): it builds cmd/ssobroker once and runs it as
// separate processes, then kills, stops, restarts and replicates them and
// the PostgreSQL server under them. It has no code of its own besides
// tests; nothing imports it.
package faulttest
