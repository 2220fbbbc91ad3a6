package oidcprovider_test

import (
	"log/slog"
	"os"
	"testing"
)

// zitadelLog receives what zitadel logs through slog.Default (it has no
// logger option). Set once, before any test, so no test mutates global
// state while others run; TestNoSecretsInLogs inspects it.
var zitadelLog = &syncBuffer{}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(zitadelLog, &slog.HandlerOptions{Level: slog.LevelDebug})))
	os.Exit(m.Run())
}
