// The OpenAI Agents SDK (@openai/agents) on the Responses API: an agent
// with one function tool, run to its final output, buffered and streamed,
// and continued from a stored response with previousResponseId; via Ollama
// (the default client) and via a gateway serving /v1/responses (a Runner
// with its own provider). The model fakes call get_weather with
// {"city":"Paris"} until they get its output, then answer weatherReply.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Agent,
  OpenAIProvider,
  Runner,
  run,
  setDefaultOpenAIClient,
  setOpenAIAPI,
  setTracingDisabled,
  tool,
} from '@openai/agents';
import { z } from 'zod';
import { client, responseID, urls, weatherReply } from './compat.mjs';

// Nothing may leave the machine: tracing would post to api.openai.com,
// whatever the client's baseURL. It is switched off; this makes sure.
const offHost = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (url, init) => {
  const u = new URL(url instanceof Request ? url.url : String(url));
  if (u.hostname !== '127.0.0.1') {
    offHost.push(String(u));
    return Promise.reject(new Error(`compat: no request may leave the machine: ${u}`));
  }
  return realFetch(url, init);
};

// requests records what the SDK sends, per instance.
const requests = { ollamaAgent: [], gatewayCalls: [] };
const record = (instance) => (body) => requests[instance].push(JSON.parse(body));

before(() => {
  setTracingDisabled(true);
  setOpenAIAPI('responses');
  setDefaultOpenAIClient(client('ollamaAgent', { onRequest: record('ollamaAgent') }));
});

// newAgent returns an agent whose tool records each call's arguments.
function newAgent() {
  const calls = [];
  const getWeather = tool({
    name: 'get_weather',
    description: 'The weather in a city.',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push({ city });
      return `sunny, 22°C in ${city}`;
    },
  });
  const agent = new Agent({ name: 'Weather', instructions: 'Use the tools.', model: 'gpt-4', tools: [getWeather] });
  return { agent, calls };
}

// The runs via each instance: the default runner (setDefaultOpenAIClient)
// for Ollama, a Runner of its own for the gateway.
const runners = {
  ollamaAgent: () => ({ run }),
  gatewayCalls: () => {
    const runner = new Runner({
      modelProvider: new OpenAIProvider({ openAIClient: client('gatewayCalls', { onRequest: record('gatewayCalls') }), useResponses: true }),
      tracingDisabled: true,
    });
    return { run: (agent, input, opts) => runner.run(agent, input, opts) };
  },
};

// checkTurns: the SDK asked twice, the second time with the call's output.
function checkTurns(sent, result) {
  assert.equal(sent.length, 2, JSON.stringify(sent));
  assert.deepEqual(sent[0].tools.map((t) => [t.type, t.name]), [['function', 'get_weather']]);
  const out = sent[1].input.at(-1);
  assert.equal(out.type, 'function_call_output', JSON.stringify(sent[1].input));
  assert.match(JSON.stringify(out.output), /sunny, 22°C in Paris/);
  assert.match(result.lastResponseId, responseID);
}

for (const instance of Object.keys(runners)) {
  test(`${instance}: run() to the final output, the tool run with the model's arguments`, async () => {
    const { agent, calls } = newAgent();
    const from = requests[instance].length;
    const result = await runners[instance]().run(agent, 'Weather in Paris?');
    assert.deepEqual(calls, [{ city: 'Paris' }]);
    assert.equal(result.finalOutput, weatherReply);
    const sent = requests[instance].slice(from);
    checkTurns(sent, result);
    assert.ok(sent.every((b) => b.stream === false), 'run() does not stream');
    // Without previousResponseId the SDK resends the conversation.
    assert.equal(sent[1].previous_response_id, undefined);
    assert.deepEqual(sent[1].input.map((i) => i.type ?? 'message'), ['message', 'function_call', 'function_call_output']);
  });

  test(`${instance}: run(…, {stream: true}) to the final output`, async () => {
    const { agent, calls } = newAgent();
    const from = requests[instance].length;
    const result = await runners[instance]().run(agent, 'Weather in Paris?', { stream: true });
    let text = '';
    const kinds = new Set();
    for await (const e of result) {
      kinds.add(e.type);
      if (e.type === 'raw_model_stream_event' && e.data.type === 'output_text_delta') text += e.data.delta;
    }
    await result.completed;
    assert.equal(result.error ?? null, null);
    assert.deepEqual(calls, [{ city: 'Paris' }]);
    assert.equal(result.finalOutput, weatherReply);
    assert.equal(text, weatherReply, 'the text deltas of the last turn');
    assert.ok(kinds.has('run_item_stream_event'), [...kinds].join(' '));
    const sent = requests[instance].slice(from);
    checkTurns(sent, result);
    assert.ok(sent.every((b) => b.stream === true), 'the streamed run streams');
  });

  test(`${instance}: run(…, {previousResponseId}): the server keeps the conversation`, async () => {
    const { agent, calls } = newAgent();
    const runner = runners[instance]();
    const earlier = await runner.run(agent, 'Weather in Paris?');
    assert.equal(earlier.finalOutput, weatherReply);
    const from = requests[instance].length;
    const result = await runner.run(agent, 'And tomorrow?', { previousResponseId: earlier.lastResponseId });
    assert.deepEqual(calls, [{ city: 'Paris' }, { city: 'Paris' }]);
    assert.equal(result.finalOutput, weatherReply);
    const sent = requests[instance].slice(from);
    checkTurns(sent, result);
    // The first request goes on from the earlier run's last response with
    // the new question; the second from the call with its output alone.
    assert.equal(sent[0].previous_response_id, earlier.lastResponseId);
    assert.deepEqual(sent[0].input, [{ role: 'user', content: 'And tomorrow?' }]);
    assert.match(sent[1].previous_response_id, responseID);
    assert.notEqual(sent[1].previous_response_id, earlier.lastResponseId);
    assert.deepEqual(sent[1].input.map((i) => i.type), ['function_call_output']);
  });
}

test('nothing was sent anywhere but the service', () => {
  assert.deepEqual(offHost, []);
  assert.ok(urls.ollamaAgent().startsWith('http://127.0.0.1:'));
});
