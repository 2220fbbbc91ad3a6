package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/config.md from the settings table")

// configTable renders the settings table as Markdown.
func configTable() string {
	var sb strings.Builder
	sb.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		def := "—"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		usage := s.usage
		if s.secret {
			usage += " **Secret.**"
		}
		fmt.Fprintf(&sb, "| `%s` | `--%s` | %s | %s |\n", s.env(), s.name, def, strings.ReplaceAll(usage, "|", "\\|"))
	}
	return sb.String()
}

const (
	tableStart = "<!-- settings:start -->\n"
	tableEnd   = "<!-- settings:end -->"
)

// TestConfigDocIsCurrent keeps docs/config.md true to the code: the table
// between the markers is generated from `settings` (go test -update).
func TestConfigDocIsCurrent(t *testing.T) {
	path := "../../docs/config.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, tableStart), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the settings markers", path)
	}
	want := doc[:i+len(tableStart)] + configTable() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date with the settings table; run: go test ./cmd/ssobroker -run TestConfigDocIsCurrent -update", path)
}
