// The API as the console calls it: a token from the token service, then Bearer calls that
// answer the EnOS envelope {code, msg, requestId, data}. The appSecret is used once, to sign
// the token request, and never kept; the token stays in this tab's sessionStorage only.

import { sha256Hex } from "./sha256.js";

const SESSION = "streamcalc.console.session";

export class ApiError extends Error {
  constructor(code, msg, requestId) {
    super(requestId ? `${msg} (code ${code}, requestId ${requestId})` : `${msg} (code ${code})`);
    this.code = code;
  }
}

export function session() {
  const saved = sessionStorage.getItem(SESSION);
  return saved ? JSON.parse(saved) : null;
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
}

export async function signIn(orgId, appKey, appSecret) {
  const timestamp = Date.now();
  const encryption = sha256Hex(`${appKey}${timestamp}${appSecret}`);
  const response = await fetch("/apim-token-service/v2.0/token/get", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ appKey, timestamp, encryption }),
  });
  const doc = await response.json();
  if (doc.status !== 0) throw new ApiError(doc.status, doc.msg);
  const saved = { orgId, appKey, token: doc.data.accessToken, expiresAt: timestamp + doc.data.expire * 1000 };
  sessionStorage.setItem(SESSION, JSON.stringify(saved));
  // A wrong Org ID would only show on the first call: check it now, while the form is open.
  try {
    await call("GET", "/streaming/v2.0/streaming/pipelines", { pageSize: "1" });
  } catch (e) {
    signOut();
    throw e;
  }
  return saved;
}

// One call; resolves to `data`, rejects with ApiError (401: the session is over).
export async function call(method, path, params = {}, body = undefined) {
  const current = session();
  if (!current) throw new ApiError(401, "not signed in");
  const query = new URLSearchParams({ ...params, orgId: current.orgId });
  const response = await fetch(`${path}?${query}`, {
    method,
    headers: { Authorization: `Bearer ${current.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc = await response.json();
  if (doc.code === 401) {
    signOut();
    window.dispatchEvent(new Event("streamcalc:signed-out"));
  }
  if (doc.code !== 0) throw new ApiError(doc.code, doc.msg, doc.requestId);
  return doc.data;
}

const P = "/streaming/v2.0/streaming";

export const api = {
  pipelines: () => call("GET", `${P}/pipelines`, { pageSize: "100", ifReleased: "true" }),
  drafts: () => call("GET", `${P}/pipelines`, { pageSize: "100", ifReleased: "false" }),
  details: (id) => call("GET", `${P}/pipeline/${id}`, { ifReleased: "false" }),
  operate: (id, action) => call("POST", `${P}/pipeline/${id}`, { action }, action === "start" ? {} : undefined),
  offsetLag: (id) => call("GET", `${P}/pipeline/${id}/offset-lag`),
  activity: (id) => call("GET", `${P}/pipeline/${id}/activity`),
  rejected: (id, limit = 20) => call("GET", `${P}/pipeline/${id}/rejected`, { limit: String(limit) }),
  audit: (id) => call("GET", "/streaming/v2.0/audit", { pipelineId: id, limit: "50" }),
  deletions: (id) => call("GET", "/streaming/v2.0/stage-state/deletions", { pipelineId: id }),
  state: (action, keys, extra = {}) => call("POST", "/streaming/v2.0/stage-state", { action, ...extra }, keys),
  restore: (id, deletionId) =>
    call("POST", "/streaming/v2.0/stage-state", { action: "restore" }, { pipelineId: id, deletionId }),
};
