package browsertest

import (
	"log/slog"
	"os"
	"testing"
)

// defaultLog collects what libraries log through slog.Default (zitadel's
// op package does, see style.md); stacks print it when a test fails.
var defaultLog = &syncBuffer{}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(defaultLog, &slog.HandlerOptions{Level: slog.LevelDebug})))
	os.Exit(m.Run())
}
