// Command ssobroker is the SAML-to-OIDC broker: one binary with the
// subcommands dev, serve, migrate, rotate-master-key and gen-master-key.
// It only wires packages together; the logic lives in broker, saml,
// oidcprovider, tenants and store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ssobroker/ssobroker/broker"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/seal"
)

const usage = `ssobroker: a SAML-to-OIDC broker

usage:
  ssobroker dev                 run with an embedded store, an IdP simulator and a demo app (no setup)
  ssobroker serve [flags]       run in production (see --help for the settings)
  ssobroker migrate             apply pending database migrations (SSOBROKER_DATABASE_URL)
  ssobroker rotate-master-key   re-encrypt private keys with the current master key
  ssobroker gen-master-key      print a new random master key
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the exit code. Errors are printed
// as one line prefixed with "ssobroker:".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "dev":
		err = dev(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = migrate(ctx, args[1:], stdout, stderr)
	case "rotate-master-key":
		err = rotateMasterKey(ctx, args[1:], stdout, stderr)
	case "gen-master-key":
		var k string
		if k, err = seal.NewKey(nil); err == nil {
			fmt.Fprintln(stdout, k)
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ssobroker: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ssobroker: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newLogger builds the process logger. zitadel/oidc logs through
// slog.Default(), so main sets the default once, here, and packages receive
// the same logger explicitly.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	l := slog.New(broker.NewLogHandler(h))
	slog.SetDefault(l)
	return l
}

// openStore opens and optionally migrates the store, and refuses to run on
// a schema older than the binary's.
func openStore(ctx context.Context, dbURL string, sealer store.Sealer, migrateNow bool, log *slog.Logger) (*store.Store, error) {
	s, err := store.Open(ctx, dbURL, store.Options{Sealer: sealer, Logger: log})
	if err != nil {
		return nil, err
	}
	if migrateNow {
		applied, err := s.Migrate(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		if len(applied) > 0 {
			log.Info("database migrated", slog.Any("applied", applied))
		}
	}
	want, err := store.Migrations(s.Dialect())
	if err != nil {
		s.Close()
		return nil, err
	}
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if latest := want[len(want)-1].Version; have < latest {
		s.Close()
		return nil, fmt.Errorf("the database schema is at version %d but this binary needs %d: run `ssobroker migrate` (or start with --migrate)", have, latest)
	}
	return s, nil
}

// migrate applies pending migrations. It needs only the database URL: no
// key material is read or written.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", os.Getenv("SSOBROKER_DATABASE_URL"), "postgres://... or sqlite:PATH (SSOBROKER_DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("SSOBROKER_DATABASE_URL (--database-url) is required")
	}
	s, err := store.Open(ctx, *dbURL, store.Options{Sealer: noSealer{}})
	if err != nil {
		return err
	}
	defer s.Close()
	applied, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema is up to date at version %d\n", v)
		return nil
	}
	fmt.Fprintf(stdout, "applied %s; schema is at version %d\n", strings.Join(applied, ", "), v)
	return nil
}

// noSealer stands in where no key material may be touched.
type noSealer struct{}

var errNoMasterKey = errors.New("this command has no master key")

func (noSealer) Seal([]byte, string) (string, error) { return "", errNoMasterKey }
func (noSealer) Open(string, string) ([]byte, error) { return nil, errNoMasterKey }
func (noSealer) CurrentKeyID() string                { return "" }

// rotateMasterKey re-seals every private key with the current master key.
// Procedure (docs/operations.md): set SSOBROKER_MASTER_KEY to the new key
// and SSOBROKER_PREVIOUS_MASTER_KEYS to the old one, run this, restart the
// replicas, then drop the old key.
func rotateMasterKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rotate-master-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", os.Getenv("SSOBROKER_DATABASE_URL"), "postgres://... or sqlite:PATH (SSOBROKER_DATABASE_URL)")
	current := fs.String("master-key", os.Getenv("SSOBROKER_MASTER_KEY"), "the new master key (SSOBROKER_MASTER_KEY)")
	previous := fs.String("previous-master-keys", os.Getenv("SSOBROKER_PREVIOUS_MASTER_KEYS"), "comma-separated old keys (SSOBROKER_PREVIOUS_MASTER_KEYS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []string
	if *dbURL == "" {
		problems = append(problems, "SSOBROKER_DATABASE_URL (--database-url) is required")
	}
	cur, err := seal.ParseKey(*current)
	if err != nil {
		problems = append(problems, "SSOBROKER_MASTER_KEY (--master-key) "+err.Error())
	}
	var prev [][]byte
	for i, p := range splitList(*previous) {
		k, err := seal.ParseKey(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("SSOBROKER_PREVIOUS_MASTER_KEYS key %d: %v", i+1, err))
		}
		prev = append(prev, k)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	ring, err := seal.NewKeyring(cur, prev, nil)
	if err != nil {
		return err
	}
	s, err := store.Open(ctx, *dbURL, store.Options{Sealer: ring})
	if err != nil {
		return err
	}
	defer s.Close()
	n, err := s.ResealAll(ctx)
	if err != nil {
		return fmt.Errorf("re-sealing (%d done before the error; safe to run again): %w", n, err)
	}
	fmt.Fprintf(stdout, "re-sealed %d private keys with master key %s\n", n, ring.CurrentKeyID())
	return nil
}
