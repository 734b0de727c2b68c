// The interactive API docs: Swagger UI (served by this service) over its own /openapi.json.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null, // no badge fetched from the public validator
    presets: [window.SwaggerUIBundle.presets.apis],
  });
});
