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

// What to tell the user of a refused call: the field messages when there are some (the general
// "Some fields are not valid." says nothing they can act on), else the message.
export function explain(error) {
  const messages = error.fields ? Object.values(error.fields).flat(Infinity).filter((m) => typeof m === 'string') : [];
  return messages.length ? messages.join(' ') : error.message;
}
