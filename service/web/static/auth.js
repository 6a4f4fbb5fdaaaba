// Sign-in of base.html.jinja. The API token, typed once per tab: kept in sessionStorage (this origin, this tab;
// never a URL or cookie) and sent as a bearer header by authorizedFetch, which a cross-site page cannot do.
const TOKEN_KEY = "afpe-api-token";
function showSignIn() {
  const signedIn = sessionStorage.getItem(TOKEN_KEY) !== null;
  document.getElementById("signed-in").hidden = !signedIn;
  document.getElementById("signed-out").hidden = signedIn;
}
async function authorizedFetch(url, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token === null) throw new Error("sign in first (API token at the top of the page)");
  const response = await fetch(url, {...options, headers: {...(options.headers || {}), Authorization: `Bearer ${token}`}});
  if (response.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showSignIn(); }
  return response;
}
async function signIn() {
  const input = document.getElementById("token-input");
  const token = input.value;
  input.value = "";
  const response = await fetch("/api/auth/check", {method: "POST", headers: {Authorization: `Bearer ${token}`}});
  document.getElementById("sign-in-message").textContent = response.ok ? "" : "wrong API token";
  if (response.ok) sessionStorage.setItem(TOKEN_KEY, token);
  showSignIn();
}
document.getElementById("sign-in").addEventListener("click", signIn);
document.getElementById("token-input").addEventListener("keydown", (event) => { if (event.key === "Enter") signIn(); });
document.getElementById("sign-out").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showSignIn(); });
showSignIn();
