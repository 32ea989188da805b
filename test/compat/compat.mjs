// Shared helpers of the compatibility suite. The suite is started by
// compat_test.go (`make test-compat`), which runs the service in front of
// fake upstreams and passes each instance's base URL in the environment.
//
// Every HTTP exchange the SDK makes is also recorded (a clone of the
// response body, read alongside the SDK) into COMPAT_RECORD_DIR, where the
// Go side validates each response and stream chunk against OpenAI's
// OpenAPI schemas once node is done.
import { after } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';

export { OpenAI };

/** env returns a required environment variable. */
export function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run this suite with \`make test-compat\` (test/compat/compat_test.go starts the servers)`);
  }
  return v;
}

/** The base URLs (…/v1) of the service instances, one per upstream set-up. */
export const urls = {
  // gateway fake, default reply "Hello from the gateway!"
  gateway: () => process.env.COMPAT_GATEWAY_URL ?? env('OPENAI_BASE_URL'),
  // gateway fake replying with a JSON object
  gatewayJSON: () => env('COMPAT_GATEWAY_JSON_URL'),
  // Ollama fake replying with a JSON object
  ollama: () => env('COMPAT_OLLAMA_URL'),
  // replays of recorded parallel tool calls, per protocol
  gatewayTools: () => env('COMPAT_GATEWAY_TOOLS_URL'),
  ollamaTools: () => env('COMPAT_OLLAMA_TOOLS_URL'),
  // every backend unreachable
  down: () => env('COMPAT_DOWN_URL'),
  // gateway fake that drops the connection in the middle of a stream
  broken: () => env('COMPAT_BROKEN_URL'),
  // gateway slow to answer, service sending keep-alive pings meanwhile;
  // and the same gateway answering 500 in the end
  slow: () => env('COMPAT_SLOW_URL'),
  slowFail: () => env('COMPAT_SLOW_FAIL_URL'),
  // the gateway fake behind a service requiring the API key "compat-key"
  secured: () => env('COMPAT_SECURED_URL'),
  // The Responses API (responses.test.mjs, agents.test.mjs):
  // Ollama fake replying "Hello from Ollama!", thinking first when streamed
  ollamaResponses: () => env('COMPAT_OLLAMA_RESPONSES_URL'),
  // Ollama fakes calling get_weather {"city":"Paris"} until they get its
  // output, then replying weatherReply: one for responses.create, one for
  // the Agents SDK
  ollamaCalls: () => env('COMPAT_OLLAMA_CALLS_URL'),
  ollamaAgent: () => env('COMPAT_OLLAMA_AGENT_URL'),
  // gateway fake serving /v1/responses itself (responses_api on), with
  // reasoning before its default reply
  gatewayResponses: () => env('COMPAT_GATEWAY_RESPONSES_URL'),
  // the same, calling get_weather {"city":"Paris"} until it gets its output
  gatewayCalls: () => env('COMPAT_GATEWAY_CALLS_URL'),
};

/** What the calling fakes answer once they have get_weather's output. */
export const weatherReply = 'It is sunny in Paris.';

/** The JSON schema of the json_schema tests (Go checks Ollama got it as `format`). */
export const personSchema = JSON.parse(
  fs.readFileSync(new URL('./testdata/person.schema.json', import.meta.url), 'utf8'),
);

const recordDir = process.env.COMPAT_RECORD_DIR;
const pending = new Set();
let seq = 0;

function recordingFetch(instance, onResponse, onRequest) {
  return async (url, init) => {
    if (onRequest && typeof init?.body === 'string') onRequest(init.body);
    const res = await fetch(url, init);
    onResponse?.(res);
    if (!recordDir) return res;
    const n = ++seq;
    const rec = {
      instance,
      method: init?.method ?? 'GET',
      url: String(url),
      request: typeof init?.body === 'string' ? init.body : null,
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      headers: Object.fromEntries(res.headers),
    };
    const write = (extra) =>
      fs.writeFileSync(
        path.join(recordDir, `${path.basename(process.argv[1] ?? 'node')}-${process.pid}-${String(n).padStart(4, '0')}.json`),
        JSON.stringify({ ...rec, ...extra }),
      );
    const p = res
      .clone()
      .text()
      .then((body) => write({ body }), (err) => write({ body: null, readError: String(err) }));
    pending.add(p);
    p.finally(() => pending.delete(p));
    return res;
  };
}

// Records still being read are written before the file's process ends.
after(async () => {
  await Promise.all([...pending]);
});

/**
 * client returns the official SDK pointed at one service instance, with no
 * retries unless opts.maxRetries says otherwise; opts.onResponse sees every
 * HTTP response the SDK receives, opts.onRequest every request body it
 * sends; opts.apiKey replaces OPENAI_API_KEY.
 */
export function client(instance, { maxRetries = 0, onResponse, onRequest, apiKey } = {}) {
  const baseURL = urls[instance]();
  return new OpenAI({
    baseURL,
    apiKey: apiKey ?? process.env.OPENAI_API_KEY ?? 'test',
    maxRetries,
    timeout: 20_000,
    fetch: recordingFetch(instance, onResponse, onRequest),
  });
}

/** The ids the service generates: chatcmpl- and 26 base32 characters. */
export const completionID = /^chatcmpl-[A-Z2-7]{26}$/;
/** The ids of the service's responses: resp_, the time in milliseconds (12 hex digits) and 80 random bits (20 hex digits). */
export const responseID = /^resp_[0-9a-f]{32}$/;
