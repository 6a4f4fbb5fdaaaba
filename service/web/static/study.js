// study.html.jinja: live status and plots. The study's name and plot kinds come from the page's
// <script type="application/json" id="study-data">.
const {name, kinds} = JSON.parse(document.getElementById("study-data").textContent);
const drawn = {};  // kind -> ETag of the figure drawn: unchanged figures are neither sent (304) nor redrawn
let shownVersion = null;  // the study version whose plots are drawn: plots are asked for only when it changes
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
  const response = await fetch(`/api/studies/${name}`);
  const s = await response.json();
  const state = document.getElementById("state");
  state.textContent = s.state; state.className = "state " + s.state;
  document.getElementById("progress").value = s.progress;
  document.getElementById("counts").textContent = `${s.finished} / ${s.n_trials} trials`;
  const failed = document.getElementById("failed");
  failed.textContent = `FAIL ${s.trials.FAIL || 0}`; failed.hidden = !s.trials.FAIL;
  const holder = document.getElementById("holder");
  holder.textContent = `· run by ${s.holder}`; holder.hidden = !s.holder;
  const latest = document.getElementById("latest-error");
  latest.querySelector("span").textContent = s.latest_error || ""; latest.hidden = !s.latest_error || !!s.error;
  document.getElementById("eta").textContent = s.eta_seconds ? `about ${Math.round(s.eta_seconds)} s left` : "";
  document.getElementById("stale").hidden = !s.stale;
  if (s.version !== shownVersion) {
    shownVersion = s.version;
    await drawPlots();
  }
  if (s.state === "queued" || s.state === "running") polling = setTimeout(refresh, 5000);
}
// Cancel and Resume (every page but an imported study's): <button data-action="cancel|resume">
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", () => act(button.dataset.action));
}
refresh();
