// Starts Swagger UI on fetchd's own description. persistAuthorization keeps the bearer token
// given to "Authorize" across page reloads. validatorUrl null: by default Swagger UI has the
// browser send the document's URL to validator.swagger.io on every view of a non-local host.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
});
