// LTI Dynamic Registration: tell the LMS that opened this page (a frame or a window) that registration is done,
// so it closes the dialog and shows the new tool. The message is the one the IMS specification defines.
"use strict";
const done = document.getElementById("lti-registration-done");
if (done) {
  done.addEventListener("click", () => {
    (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
  });
}
