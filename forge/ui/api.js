// Calls to the Inflow backend through Forge Remote: the same JSON API the Connect panels use.
import { invokeRemote } from '@forge/bridge';

export async function call(method, path, body) {
  const request = { path, method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    request.headers['Content-Type'] = 'application/json';
    request.body = body;
  }
  const response = (await invokeRemote(request)) || {};
  const status = response.status || 0;
  if (status >= 200 && status < 300) return response.body || {};
  const data = response.body || {};
  const error = new Error(data.message || `Inflow could not answer (${status || 'no response'}).`);
  error.status = status;
  error.fields = data.errors || null;
  throw error;
}
