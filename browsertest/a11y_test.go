package browsertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// screenshotsEnv names the folder for the screenshots TestAccessibility
// takes of every page.
const screenshotsEnv = "SSOBROKER_SCREENSHOTS"

func screenshotDir() string {
	if d := os.Getenv(screenshotsEnv); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "ssobroker-shots")
}

// auditJS measures a page against the checks below, in the current
// viewport and color scheme. Colors are composited over the ancestors'
// backgrounds; contrast is WCAG 2's relative-luminance ratio.
const auditJS = `(() => {
  const parse = c => { const m = /rgba?\(([^)]+)\)/.exec(c); if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const over = (top, bottom) => ({r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a), b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
  const background = el => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) { layers.push(c); if (c.a === 1) break; } }
    let col = {r: 255, g: 255, b: 255, a: 1}; for (let i = layers.length - 1; i >= 0; i--) col = over(layers[i], col); return col; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const hex = c => "#" + [c.r, c.g, c.b].map(v => Math.round(v).toString(16).padStart(2, "0")).join("");
  const visible = el => { const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility === "visible" && cs.display !== "none"; };
  const describe = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + String(el.className).split(" ").join(".") : "") +
    ' "' + (el.textContent || el.value || "").trim().slice(0, 40) + '"';
  const out = {lang: document.documentElement.lang, title: document.title, h1: document.querySelectorAll("h1").length,
    viewportMeta: !!document.querySelector('meta[name=viewport][content*="width=device-width"]'),
    scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
    unlabeled: [], smallTargets: [], smallInputText: [], lowContrast: [], lowNonText: [], checked: 0};
  const check = (what, fg, bg, need) => { out.checked++; const r = ratio(fg, bg);
    if (r < need) out.lowContrast.push(what + ": " + hex(fg) + " on " + hex(bg) + " = " + r.toFixed(2) + " < " + need); };
  // Text: every element with its own visible text.
  for (const el of document.body.querySelectorAll("*")) {
    if (!visible(el)) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== "");
    const cs = getComputedStyle(el), size = parseFloat(cs.fontSize), bold = +cs.fontWeight >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    const bg = background(el);
    if (own) check(describe(el), over(parse(cs.color), bg), bg, need);
    if (el.matches("input:not([type=hidden]), select, textarea")) {
      if (el.value) check(describe(el) + " value", over(parse(cs.color), bg), bg, need);
      if (el.placeholder && !el.value) check(describe(el) + " placeholder", over(parse(getComputedStyle(el, "::placeholder").color), bg), bg, need);
      // The field's outline must be discernible (WCAG 1.4.11).
      const around = background(el.parentElement), border = parse(cs.borderTopColor);
      if (ratio(over(border, around), around) < 3) out.lowNonText.push(describe(el) + " border " + hex(border) + " on " + hex(around) + " = " + ratio(over(border, around), around).toFixed(2));
      if (size < 16 && matchMedia("(max-width: 30rem)").matches) out.smallInputText.push(describe(el) + " " + size + "px");
      const labelled = el.labels.length > 0 && [...el.labels].every(visible) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
      if (!labelled) out.unlabeled.push(describe(el));
    }
  }
  // Tap targets: 44×44 CSS px, except links inside a sentence.
  const focusRing = parse(getComputedStyle(document.documentElement).getPropertyValue("--focus").trim().replace(/^#(..)(..)(..)$/, (_, r, g, b) => "rgb(" + [r, g, b].map(h => parseInt(h, 16)).join(",") + ")"));
  for (const el of document.body.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]")) {
    if (!visible(el)) continue;
    const inSentence = el.tagName === "A" && [...el.parentElement.childNodes].some(n => n !== el && n.textContent.trim() !== "" && (n.nodeType === 3 || getComputedStyle(n).display === "inline"));
    const r = el.getBoundingClientRect();
    if (!inSentence && (r.width < 44 || r.height < 44)) out.smallTargets.push(describe(el) + " " + Math.round(r.width) + "×" + Math.round(r.height));
    // The focus ring is drawn around the element, over its parent.
    const around = background(el.parentElement);
    if (focusRing && ratio(focusRing, around) < 3) out.lowNonText.push(describe(el) + " focus ring " + hex(focusRing) + " on " + hex(around) + " = " + ratio(focusRing, around).toFixed(2));
  }
  return out;
})()`

type audit struct {
	Lang           string   `json:"lang"`
	Title          string   `json:"title"`
	H1             int      `json:"h1"`
	ViewportMeta   bool     `json:"viewportMeta"`
	ScrollWidth    float64  `json:"scrollWidth"`
	ClientWidth    float64  `json:"clientWidth"`
	Unlabeled      []string `json:"unlabeled"`
	SmallTargets   []string `json:"smallTargets"`
	SmallInputText []string `json:"smallInputText"`
	LowContrast    []string `json:"lowContrast"`
	LowNonText     []string `json:"lowNonText"`
	Checked        int      `json:"checked"`
}

// focusStop is one element reached with Tab.
type focusStop struct {
	Element      string  `json:"element"`
	FocusVisible bool    `json:"focusVisible"`
	OutlineStyle string  `json:"outlineStyle"`
	OutlineWidth float64 `json:"outlineWidth"`
}

// tabWalk presses Tab until focus leaves the page or comes back around,
// and reports each stop. It starts from wherever focus is (the autofocused
// field, or the top of a freshly loaded page).
func tabWalk(tb *tab) []focusStop {
	tb.t.Helper()
	var stops []focusStop
	seen := map[string]bool{}
	for range 30 {
		tb.press("Tab", 0)
		var s focusStop
		tb.eval(`(() => { const e = document.activeElement; if (!e || e === document.body) return {element: "body"};
		  const cs = getComputedStyle(e);
		  return {element: e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.tagName === "A" && e.className ? "." + e.className.split(" ").join(".") : "") +
		      (e.tagName === "INPUT" || e.tagName === "SELECT" ? "" : " " + JSON.stringify(e.textContent.trim())),
		    focusVisible: e.matches(":focus-visible"), outlineStyle: cs.outlineStyle, outlineWidth: parseFloat(cs.outlineWidth)}; })()`, &s)
		if s.Element == "body" || seen[s.Element] {
			break
		}
		seen[s.Element] = true
		stops = append(stops, s)
	}
	return stops
}

// checkPage audits the current page at both viewports and in both color
// schemes, saves screenshots, and walks it with Tab. wantTabOrder, when
// given, is the expected sequence of focus stops from the page's initial
// focus.
func checkPage(t *testing.T, tb *tab, name string, wantTabOrder ...string) {
	t.Helper()
	// Keyboard first, while focus is where the page put it.
	initial := focused(tb)
	stops := tabWalk(tb)
	var order []string
	if initial != "body" {
		order = append(order, initial)
	}
	for _, s := range stops {
		if len(order) == 0 || order[len(order)-1] != s.Element {
			order = append(order, s.Element)
		}
		if !s.FocusVisible || s.OutlineStyle == "none" || s.OutlineWidth < 2 {
			t.Errorf("%s: %s has no visible focus indicator (:focus-visible %v, outline %s %.0fpx)", name, s.Element, s.FocusVisible, s.OutlineStyle, s.OutlineWidth)
		}
	}
	if len(wantTabOrder) > 0 && strings.Join(order, " → ") != strings.Join(wantTabOrder, " → ") {
		t.Errorf("%s: Tab order\n  %s\nwant\n  %s", name, strings.Join(order, " → "), strings.Join(wantTabOrder, " → "))
	}

	dir := screenshotDir()
	for _, vp := range []struct {
		name          string
		width, height int
		mobile        bool
	}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}} {
		tb.viewport(vp.width, vp.height, vp.mobile)
		for _, scheme := range []string{"light", "dark"} {
			tb.colorScheme(scheme)
			where := fmt.Sprintf("%s (%s, %s)", name, vp.name, scheme)
			var a audit
			tb.eval(auditJS, &a)
			if a.Lang != "en" || a.H1 != 1 || a.Title == "" || !a.ViewportMeta {
				t.Errorf("%s: lang=%q, %d h1, title %q, viewport meta %v; want lang, exactly one h1, a title and a device-width viewport", where, a.Lang, a.H1, a.Title, a.ViewportMeta)
			}
			if a.ScrollWidth > a.ClientWidth {
				t.Errorf("%s: scrolls horizontally (content %.0fpx wide in %.0fpx)", where, a.ScrollWidth, a.ClientWidth)
			}
			if a.Checked == 0 {
				t.Errorf("%s: no text found to check", where)
			}
			for _, list := range []struct {
				what  string
				items []string
			}{{"control without a visible label", a.Unlabeled}, {"tap target under 44×44px", a.SmallTargets},
				{"input text under 16px (phones zoom in)", a.SmallInputText}, {"text contrast", a.LowContrast}, {"non-text contrast under 3:1", a.LowNonText}} {
				for _, it := range list.items {
					t.Errorf("%s: %s: %s", where, list.what, it)
				}
			}
			// Light at both sizes, dark on the phone (screenshots are the
			// slow part).
			switch {
			case scheme == "light":
				tb.screenshot(filepath.Join(dir, name+"-"+vp.name+".png"))
			case vp.mobile:
				tb.screenshot(filepath.Join(dir, name+"-"+vp.name+"-dark.png"))
			}
		}
	}
	tb.viewport(1280, 800, false)
	tb.colorScheme("light")
}

// TestAccessibility walks through every page a user can meet (demo app,
// hosted page, its error state, picker, SAML POST page, simulator, error
// page, signed-in result) and checks each at 1280×800 and at a 390×844
// phone viewport, in the light and the dark scheme: lang, one h1, labels,
// Tab order and a visible focus ring, 44px tap targets, no horizontal
// scrolling, WCAG AA text contrast (3:1 for field borders and the focus
// ring), 16px input text. Screenshots land in SSOBROKER_SCREENSHOTS.
func TestAccessibility(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	c := startChrome(t)
	tb := c.newTab(t)

	tb.navigate(s.issuer + "/demo/")
	checkPage(t, tb, "demo", `input#login_hint`, `button "Sign in with SSO"`)

	tb.navigation(s.issuer+"/login?id=", func() { tb.click(`form[action="/demo/login"] button[type=submit]`) })
	checkPage(t, tb, "login", "input#email", `button "Continue"`)
	// What a keyboard user sees on Continue (the walk above left the page).
	tb.press("Tab", 0)
	tb.press("Tab", 0)
	if got := focused(tb); got != `button "Continue"` {
		t.Errorf("Tab, Tab from the top of the hosted page focuses %s, want Continue", got)
	}
	tb.screenshot(filepath.Join(screenshotDir(), "login-focus-desktop.png"))

	submitEmail(tb, "jane@unknown-corp.test", s.issuer+"/login")
	checkPage(t, tb, "login-error", "input#email", `button "Continue"`)

	submitEmail(tb, "bob@"+pickerDomain, s.issuer+"/login")
	checkPage(t, tb, "picker", `button "Globex staff (Okta)"`, `button "Globex contractors (POST binding)"`, `a.link "Use a different email"`)

	// The SAML POST page as it looks without JavaScript (with it, it is
	// gone before anyone sees it).
	tb.javascript(false)
	id := tb.evalString(`[...document.querySelectorAll("button[name=connection]")].find(b => b.textContent.includes("POST binding")).value`)
	tb.navigation(s.issuer+"/login", func() { tb.click(`button[name=connection][value="` + id + `"]`) })
	checkPage(t, tb, "samlpost", `button "Continue"`)
	tb.navigation(s.idp+"/simulator/sso", func() { tb.click("#autosubmit button[type=submit]") })
	tb.javascript(true)
	checkPage(t, tb, "simulator")

	simulatorSignIn(tb, s, "expired", s.issuer+"/saml/")
	checkPage(t, tb, "error", `a.button "Try again"`, `a.link "Back to Demo app"`)

	tb.navigation(s.issuer+"/login?id=", func() { tb.click("a.button") })
	submitEmail(tb, demoUser, s.idp+"/simulator/sso")
	simulatorSignIn(tb, s, "ok", s.issuer+"/demo/callback")
	checkPage(t, tb, "demo-result")
	tb.assertNoConsoleProblems()

	// The tenant admin portal, opened from a one-time link.
	tb.navigate(s.portalLink(t), s.issuer+"/portal/")
	checkPage(t, tb, "portal")
	tb.assertNoConsoleProblems()
	t.Logf("screenshots in %s", screenshotDir())
}
