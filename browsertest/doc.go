// Package browsertest drives the hosted login pages in a real headless
// Chromium: the login flow from the dev-mode demo app through the hosted
// page, the IdP simulator and the ACS, the SameSite behaviour of the
// browser-binding cookie on a cross-site ACS POST, response_mode=form_post,
// and accessibility and mobile checks of every page.
//
// The package holds tests only. It speaks the Chrome DevTools Protocol over
// --remote-debugging-pipe with the standard library (no chromedriver, no
// WebSocket, no extra module), and needs a Chromium binary: on Debian or
// Ubuntu `apt-get install -y chromium`, or SSOBROKER_CHROMIUM=/path/to/chrome.
// Without one the tests fail; they never skip.
//
// Screenshots go to SSOBROKER_SCREENSHOTS (default /tmp/ssobroker-shots).
package browsertest
