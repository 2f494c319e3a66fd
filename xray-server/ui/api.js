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

/** GET a path of the API, returning its JSON. */
export async function get(path, params) {
  let res;
  try {
    res = await fetch(path + query(params), { headers: { accept: 'application/json' } });
  } catch (e) {
    throw new ApiError(`cannot reach the X-Ray server (${e.message})`, 0, 'unreachable');
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
