// Test-only stand-in for @forge/bridge: invokeRemote does a real fetch to the backend with a real
// Forge Invocation Token (signed by the test key), as Forge's proxy would; getContext returns the
// module context the test gives in window.__INFLOW_FORGE_TEST__.
const config = () => window.__INFLOW_FORGE_TEST__;

export async function invokeRemote({ path, method, headers = {}, body }) {
  const { baseUrl, token, systemToken, userToken } = config();
  const sent = { ...headers, Authorization: `Bearer ${token}` };
  if (systemToken) sent['x-forge-oauth-system'] = systemToken;
  if (userToken) sent['x-forge-oauth-user'] = userToken;
  const response = await fetch(baseUrl + path, { method, headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed;
  try { parsed = text ? JSON.parse(text) : undefined; } catch (e) { parsed = undefined; }
  const received = {};
  response.headers.forEach((value, name) => { received[name] = value; });
  return { status: response.status, headers: received, body: parsed };
}

export const view = { getContext: async () => config().context };
