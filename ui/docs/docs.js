// The API docs page: Swagger UI from the installed swagger-ui-dist package, nothing from the
// network. The page is public; the OpenAPI document is fetched with the reader's key (unless
// the server makes it public), and "Try it out" sends the same key. The key lives in this
// tab's sessionStorage, in the slot the console uses, so one sign-in serves both pages; it is
// never put in a URL.
'use strict';

const KEY_SLOT = 'provgraph.apiKey';
const $ = (selector) => document.querySelector(selector);

function status(text, isError = false) {
  const line = $('#docs-status');
  line.textContent = text;
  line.classList.toggle('error', isError);
  line.hidden = !text;
}

function showSignedIn(key) {
  const id = key.startsWith('pgk_') ? key.slice(4, 16) : 'key';
  $('#docs-who-key').textContent = `signed in with ${id}…`;
  $('#docs-who').hidden = false;
  $('#docs-signin').hidden = true;
}

function showSignIn() {
  $('#docs-who').hidden = true;
  $('#docs-signin').hidden = false;
  $('#docs-key').value = '';
  $('#docs-key').focus();
}

async function fetchSpec(key) {
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch('/openapi.json', { headers, credentials: 'omit', cache: 'no-store' });
  if (response.status === 401) return { refused: true };
  if (!response.ok) throw new Error(`the server answered ${response.status} for /openapi.json`);
  return { spec: await response.json() };
}

// The header scheme the API declares for `X-API-Key` (FastAPI names it after its class).
function apiKeyScheme(spec) {
  const schemes = (spec.components && spec.components.securitySchemes) || {};
  for (const [name, scheme] of Object.entries(schemes)) {
    if (scheme.type === 'apiKey' && scheme.in === 'header') return name;
  }
  return null;
}

function render(spec, key) {
  const ui = window.SwaggerUIBundle({
    spec,
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null, // no badge fetched from a validator service
    persistAuthorization: false, // the key stays in sessionStorage only, never localStorage
    tryItOutEnabled: false,
    defaultModelsExpandDepth: 0,
  });
  const scheme = apiKeyScheme(spec);
  if (key && scheme) ui.preauthorizeApiKey(scheme, key);
  window.provgraphDocs = { ui };
}

async function start() {
  if (typeof window.SwaggerUIBundle !== 'function') {
    status('Swagger UI is not installed: run `npm ci --prefix ui` on the server.', true);
    return;
  }
  const key = sessionStorage.getItem(KEY_SLOT) || '';
  let answer;
  try {
    answer = await fetchSpec(key);
  } catch (error) {
    status(`The API description could not be loaded: ${error.message}`, true);
    return;
  }
  if (answer.refused) {
    if (key) sessionStorage.removeItem(KEY_SLOT);
    showSignIn();
    status(
      key
        ? 'The stored key was refused (unknown, malformed or revoked): sign in again.'
        : 'Sign in with an API key (any scope) to read the API description and try it out.',
      Boolean(key),
    );
    return;
  }
  if (key) showSignedIn(key);
  else showSignIn();
  status(key ? '' : 'Sign in to try endpoints out: they need a key with the scope they name.');
  render(answer.spec, key);
}

async function signIn(event) {
  event.preventDefault();
  const key = $('#docs-key').value.trim();
  if (!key) return;
  let answer;
  try {
    answer = await fetchSpec(key);
  } catch (error) {
    status(`Sign-in failed: ${error.message}`, true);
    return;
  }
  if (answer.refused) {
    status('Sign-in failed: the key was refused (unknown, malformed or revoked).', true);
    $('#docs-key').select();
    return;
  }
  sessionStorage.setItem(KEY_SLOT, key);
  $('#swagger-ui').replaceChildren();
  showSignedIn(key);
  status('');
  render(answer.spec, key);
}

function signOut() {
  sessionStorage.removeItem(KEY_SLOT);
  $('#swagger-ui').replaceChildren();
  window.provgraphDocs = undefined;
  start();
}

document.addEventListener('DOMContentLoaded', () => {
  $('#docs-signin').addEventListener('submit', signIn);
  $('#docs-sign-out').addEventListener('click', signOut);
  start();
});
