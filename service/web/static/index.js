// index.html.jinja: the start form (present when specs are shipped) is posted by script with the signed-in
// token as a bearer header (see auth.js); the service redirects to the new study's page.
document.getElementById("start-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("start-message");
  try {
    const response = await authorizedFetch("/studies", {method: "POST", body: new URLSearchParams(new FormData(event.target))});
    if (response.ok) { location.href = response.url; return; }
    message.textContent = (await response.json()).error;
  } catch (error) {
    message.textContent = error.message;
  }
});
// the import form: multipart, with the signed-in token as a bearer header; optional fields left empty are not sent
document.getElementById("import-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("import-message");
  const form = new FormData(event.target);
  for (const [key, value] of [...form.entries()]) if (value === "") form.delete(key);
  try {
    const response = await authorizedFetch("/api/studies/import", {method: "POST", body: form});
    const body = await response.json();
    if (response.ok) { location.href = `/studies/${encodeURIComponent(body.name)}`; return; }
    message.textContent = body.error;
  } catch (error) {
    message.textContent = error.message;
  }
});
