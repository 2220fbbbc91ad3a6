// Package templates holds the HTML pages and static assets of the hosted
// login page, the tenant admin portal and dev mode, embedded in the binary.
// There are no external assets: no CDN, no web fonts, no inline script.
//
// Each page file defines "title" and "content"; base.html lays them out.
// Pages are parsed once at startup, each cloned from the base layout.
package templates

import "embed"

// FS holds *.html and static/*.
//
//go:embed *.html static
var FS embed.FS

// Pages lists the page templates the broker must find at startup.
var Pages = []string{"login.html", "picker.html", "error.html", "samlpost.html", "simulator.html", "demo.html", "portal.html"}
