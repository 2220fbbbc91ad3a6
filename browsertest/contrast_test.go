package browsertest

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ssobroker/ssobroker/templates"
)

// TestStylesheetContrast computes WCAG 2 contrast ratios straight from the
// stylesheet's color variables, in the light and the dark scheme, for the
// pairs the pages use. It needs no browser; TestAccessibility checks the
// rendered pages.
func TestStylesheetContrast(t *testing.T) {
	css, err := templates.FS.ReadFile("static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	src := string(css)
	dark := strings.Index(src, "@media (prefers-color-scheme: dark)")
	if dark < 0 {
		t.Fatal("style.css has no dark scheme")
	}
	light := cssVars(src[:dark])
	darkVars := cssVars(src[:dark])
	for k, v := range cssVars(src[dark:]) {
		darkVars[k] = v // the dark block overrides the light defaults
	}
	pairs := []struct {
		fg, bg string
		min    float64
		what   string
	}{
		{"text", "card", 4.5, "body text"},
		{"text", "bg", 4.5, "text on the page background (pre blocks)"},
		{"muted", "card", 4.5, "secondary text"},
		{"muted", "bg", 4.5, "footer"},
		{"accent", "card", 4.5, "links, secondary buttons"},
		{"accent-text", "accent", 4.5, "button label"},
		{"error", "error-bg", 4.5, "error message"},
		{"placeholder", "card", 4.5, "placeholder"},
		{"border", "card", 3, "field border (WCAG 1.4.11)"},
		{"error", "card", 3, "invalid field border"},
		{"focus", "card", 3, "focus ring on the card"},
		{"focus", "bg", 3, "focus ring on the page"},
	}
	for _, scheme := range []struct {
		name string
		vars map[string]string
	}{{"light", light}, {"dark", darkVars}} {
		for _, p := range pairs {
			fg, bg := scheme.vars[p.fg], scheme.vars[p.bg]
			if fg == "" || bg == "" {
				t.Errorf("%s: --%s or --%s missing", scheme.name, p.fg, p.bg)
				continue
			}
			r := contrast(fg, bg)
			t.Logf("%-5s %-40s --%s %s on --%s %s: %.2f:1", scheme.name, p.what, p.fg, fg, p.bg, bg, r)
			if r < p.min {
				t.Errorf("%s scheme, %s: --%s %s on --%s %s is %.2f:1, want at least %.1f:1", scheme.name, p.what, p.fg, fg, p.bg, bg, r, p.min)
			}
		}
	}
}

var cssVar = regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-fA-F]{6})\b`)

func cssVars(block string) map[string]string {
	out := map[string]string{}
	for _, m := range cssVar.FindAllStringSubmatch(block, -1) {
		out[m[1]] = strings.ToLower(m[2])
	}
	return out
}

// contrast is the WCAG 2 contrast ratio of two #rrggbb colors.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(hex string) float64 {
	channel := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*channel(0) + 0.7152*channel(1) + 0.0722*channel(2)
}
