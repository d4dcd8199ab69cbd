// Posts the LTI form on this page at once (the button stays for browsers without scripts).
"use strict";
const form = document.getElementById("lti-autopost");
if (form) form.submit();
