// Submits the one form marked #autosubmit (SAML HTTP-POST binding). The
// page has a visible Continue button, so it works without JavaScript too.
"use strict";
(function () {
  var f = document.getElementById("autosubmit");
  if (f) { f.submit(); }
})();
