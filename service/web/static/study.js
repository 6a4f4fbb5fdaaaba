// study.html.jinja: live status, header and plots. The study's name and plot kinds come from the page's
// <script type="application/json" id="study-data">.
const {name, kinds} = JSON.parse(document.getElementById("study-data").textContent);
const drawn = {};  // kind -> ETag of the figure drawn: unchanged figures are neither sent (304) nor redrawn
let shownVersion = null;  // the study version whose plots are drawn: plots are asked for only when it changes
let shownHeader = null;  // what the header shows (version, state, note, error, holder): fetched again on a change
async function drawPlots() {
  for (const kind of kinds) {
    const div = document.getElementById("plot-" + kind);
    const headers = drawn[kind] ? {"If-None-Match": drawn[kind]} : {};
    const response = await fetch(`/api/studies/${name}/plots/${kind}`, {cache: "no-store", headers});
    if (response.status === 304) continue;
    const etag = response.headers.get("ETag");
    const body = await response.json();
    if (response.ok) {
      drawn[kind] = etag;
      Plotly.react(div, body.data, body.layout, {responsive: true});
    } else {
      div.className = "note";
      div.textContent = `${kind}: ${body.error}`;
    }
  }
}
// The header is rendered (and escaped) by the server, the template the page included: its fresh copy is parsed
// as a separate document and put in place of the old one (no innerHTML; no script in it runs).
async function redrawHeader() {
  const response = await fetch(`/studies/${name}/header`, {cache: "no-store"});
  if (!response.ok) return false;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  document.getElementById("study-header").replaceWith(page.getElementById("study-header"));
  return true;
}
let polling;  // the timer of the next status poll
async function act(action) {
  const message = document.getElementById("action-message");
  message.textContent = `${action}: sent, waiting for the service`;
  try {
    const response = await authorizedFetch(`/api/studies/${name}/${action}`, {method: "POST"});
    const body = await response.json();
    message.textContent = response.ok ? `${action}: done` : `${action}: ${body.error}`;
  } catch (error) {
    message.textContent = `${action}: ${error.message}`;
  }
  await refresh();
}
async function refresh() {
  clearTimeout(polling);
  const response = await fetch(`/api/studies/${name}`, {cache: "no-store"});
  const s = await response.json();
  const shown = JSON.stringify([s.version, s.state, s.note, s.error, s.holder, s.managed]);
  if (shown !== shownHeader && await redrawHeader()) shownHeader = shown;
  document.getElementById("eta").textContent = s.eta_seconds ? `about ${Math.round(s.eta_seconds)} s left` : "";
  document.getElementById("stale").hidden = !s.stale;
  if (s.version !== shownVersion) {
    shownVersion = s.version;
    await drawPlots();
  }
  if (s.state === "queued" || s.state === "running") polling = setTimeout(refresh, 5000);
}
// Cancel and Resume, where they apply (the header has them): <button data-action="cancel|resume">
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) act(button.dataset.action);
});
refresh();
