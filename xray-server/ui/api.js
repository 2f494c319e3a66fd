// The JSON API, as the page uses it. Every failure becomes an Error carrying the server's message.

/** Thrown when the server answers with an error (its `{code, error}` body) or cannot be reached. */
export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A query string from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

/** Where the page keeps the API key (servers with keys configured want a `read` key). */
const KEY_STORAGE = 'xray.apiKey';

/** The stored API key, if any. */
function apiKey() {
  try {
    return window.localStorage.getItem(KEY_STORAGE) || '';
  } catch (e) {
    return '';
  }
}

/** One request, with the stored key when there is one. */
async function fetchJson(url) {
  const headers = { accept: 'application/json' };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  try {
    return await fetch(url, { headers });
  } catch (e) {
    throw new ApiError(`cannot reach the X-Ray server (${e.message})`, 0, 'unreachable');
  }
}

/** GET a path of the API, returning its JSON. A 401 asks once for a read key, kept in this
 * browser, and retries. */
export async function get(path, params) {
  const url = path + query(params);
  let res = await fetchJson(url);
  if (res.status === 401) {
    const key = window.prompt('This X-Ray server needs an API key with the read scope:', '');
    if (key) {
      try {
        window.localStorage.setItem(KEY_STORAGE, key.trim());
      } catch (e) {
        /* private mode: the key lasts for this request only */
      }
      res = await fetchJson(url);
    }
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    throw new ApiError(`the server answered ${res.status} with a body that is not JSON`, res.status, 'bad_body');
  }
  if (!res.ok) {
    throw new ApiError((body && body.error) || `HTTP ${res.status}`, res.status, body && body.code);
  }
  return body;
}

const enc = encodeURIComponent;

/** `GET /runs`. */
export const listRuns = (params) => get('/runs', params);
/** `GET /runs/{id}/steps`: the run and a page of its steps. */
export const runSteps = (runId, params) => get(`/runs/${enc(runId)}/steps`, params);
/** `GET /runs/{id}/steps/{step_id}`: one step in full. */
export const runStep = (runId, stepId) => get(`/runs/${enc(runId)}/steps/${enc(stepId)}`);
/** `GET /runs/{id}/items/{item}`. */
export const itemFate = (runId, item) => get(`/runs/${enc(runId)}/items/${enc(item)}`);
/** `GET /items/{item}`: one item across runs, newest first. */
export const itemHistory = (item, params) => get(`/items/${enc(item)}`, params);
/** `GET /steps`. */
export const searchSteps = (params) => get('/steps', params);
/** `GET /pipelines`: each pipeline's runs, failures and versions in a window. */
export const listPipelines = (params) => get('/pipelines', params);
/** `GET /pipelines/{name}/stats`: a pipeline's figures bucket by bucket. */
export const pipelineStats = (pipeline, params) => get(`/pipelines/${enc(pipeline)}/stats`, params);
/** `GET /pipelines/{name}/compare`: two selections of its runs side by side. */
export const comparePipeline = (pipeline, params) => get(`/pipelines/${enc(pipeline)}/compare`, params);
/** `GET /health`. */
export const health = () => get('/health');

/** Every step of a run, page by page (at most `max`), calling `onPage` as each arrives. */
export async function allRunSteps(runId, max = 5000, onPage) {
  let cursor = null;
  let run = null;
  const steps = [];
  do {
    const page = await runSteps(runId, { limit: 1000, cursor });
    run = page.run;
    steps.push(...page.steps);
    cursor = page.next_cursor;
    if (onPage) onPage(page);
  } while (cursor && steps.length < max);
  return { run, steps, truncated: Boolean(cursor) };
}
