// The Responses API through the openai package: responses.create buffered,
// responses.stream with finalResponse, a function-tool round trip continued
// with previous_response_id alone, and stored responses read back, listed
// and deleted; via Ollama, via the gateway's chat completions, and via a
// gateway serving /v1/responses itself. compat_test.go validates every
// answer and event against OpenAI's schemas and checks what the fakes got.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, OpenAI, responseID, weatherReply } from './compat.mjs';

// The plain instances: what each answers, with which usage, through whom.
const plain = {
  ollamaResponses: { backend: 'ollama', reply: 'Hello from Ollama!', usage: { input_tokens: 26, output_tokens: 4 }, reasoning: 'The user greets.' },
  gateway: { backend: 'gateway', reply: 'Hello from the gateway!', usage: { input_tokens: 12, output_tokens: 5 } },
  gatewayResponses: { backend: 'gateway', reply: 'Hello from the gateway!', usage: { input_tokens: 12, output_tokens: 5 }, reasoning: 'The user greets.' },
};

function checkUsage(usage, want) {
  assert.equal(usage.input_tokens, want.input_tokens, JSON.stringify(usage));
  assert.equal(usage.output_tokens, want.output_tokens, JSON.stringify(usage));
  assert.equal(usage.total_tokens, want.input_tokens + want.output_tokens, JSON.stringify(usage));
}

for (const [instance, c] of Object.entries(plain)) {
  test(`${instance}: responses.create, buffered`, async () => {
    const openai = client(instance);
    const before = Math.floor(Date.now() / 1000);
    const { data: r, response } = await openai.responses
      .create({ model: 'gpt-4', instructions: 'Be brief.', input: 'Say hello.' })
      .withResponse();
    assert.equal(response.headers.get('x-backend'), c.backend);
    assert.match(r.id, responseID);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'gpt-4', 'model echoes the requested name');
    assert.equal(r.instructions, 'Be brief.');
    assert.ok(r.created_at >= before && r.created_at <= Math.ceil(Date.now() / 1000), `created_at ${r.created_at}`);
    assert.equal(r.output_text, c.reply, 'the SDK joins the output_text parts');
    const messages = r.output.filter((o) => o.type === 'message');
    assert.equal(messages.length, 1, JSON.stringify(r.output));
    assert.equal(messages[0].role, 'assistant');
    assert.equal(messages[0].status, 'completed');
    assert.match(messages[0].id, /^msg_/);
    checkUsage(r.usage, c.usage);
  });

  test(`${instance}: responses.stream, events in order and finalResponse`, async () => {
    const openai = client(instance);
    const stream = openai.responses.stream({ model: 'gpt-4', input: 'Say hello.', store: false });
    const events = [];
    let deltas = '';
    let reasoning = '';
    for await (const e of stream) {
      events.push(e);
      if (e.type === 'response.output_text.delta') deltas += e.delta;
      if (e.type === 'response.reasoning_text.delta') reasoning += e.delta;
    }
    const final = await stream.finalResponse();
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'response.created', types.join(' '));
    assert.equal(types[1], 'response.in_progress', types.join(' '));
    assert.equal(types.at(-1), 'response.completed', types.join(' '));
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i), 'sequence numbers 0, 1, 2…');
    for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done']) {
      assert.ok(types.includes(t), `${t} in ${types.join(' ')}`);
    }
    assert.equal(deltas, c.reply);
    assert.equal(reasoning, c.reasoning ?? '', 'reasoning_text deltas');
    const completed = events.at(-1).response;
    assert.match(final.id, responseID);
    assert.equal(events[0].response.id, final.id, 'one id from response.created on');
    assert.equal(final.id, completed.id);
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, c.reply);
    assert.deepEqual(final.output.map((o) => o.type), c.reasoning ? ['reasoning', 'message'] : ['message']);
    checkUsage(final.usage, c.usage);
  });

  test(`${instance}: stored: retrieve, inputItems.list, delete, then NotFoundError`, async () => {
    const openai = client(instance);
    const r = await openai.responses.create({ model: 'gpt-4', input: [{ role: 'user', content: 'Remember this.' }] });
    assert.match(r.id, responseID);

    const got = await openai.responses.retrieve(r.id);
    assert.equal(got.id, r.id);
    assert.equal(got.status, 'completed');
    assert.equal(got.output_text, c.reply);
    assert.deepEqual(got.output, r.output);

    const items = [];
    for await (const item of openai.responses.inputItems.list(r.id)) items.push(item);
    assert.equal(items.length, 1, JSON.stringify(items));
    assert.equal(items[0].type, 'message');
    assert.equal(items[0].role, 'user');
    assert.ok(items[0].id, 'a stored input item has an id');
    assert.deepEqual(items[0].content, [{ type: 'input_text', text: 'Remember this.' }]);

    await openai.responses.delete(r.id);
    for (const call of [() => openai.responses.retrieve(r.id), () => openai.responses.delete(r.id),
      () => openai.responses.inputItems.list(r.id)]) {
      await assert.rejects(call(), (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, 404);
        assert.equal(err.type, 'invalid_request_error');
        assert.match(err.message, new RegExp(r.id));
        return true;
      });
    }
    // Nor can a conversation go on from it.
    await assert.rejects(
      openai.responses.create({ model: 'gpt-4', previous_response_id: r.id, input: 'And then?' }),
      (err) => err instanceof OpenAI.NotFoundError && err.param === 'previous_response_id',
    );
  });
}

// --- a function tool, called by the model and answered by the client -------

const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};
// A hosted tool a local model cannot run: the service leaves it out.
const webSearch = { type: 'web_search' };
const output = 'sunny, 22°C';

// The instances whose model calls get_weather until it has the output.
const calling = { ollamaCalls: 'ollama', gatewayCalls: 'gateway' };

function checkCall(first) {
  assert.match(first.id, responseID);
  assert.equal(first.status, 'completed');
  assert.equal(first.output_text, '');
  const calls = first.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, JSON.stringify(first.output));
  const [call] = calls;
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  assert.match(call.call_id, /^call_/);
  assert.equal(call.status, 'completed');
  assert.deepEqual(first.tools.map((t) => t.type), ['function', 'web_search'], 'the tools are echoed as sent');
  return call;
}

for (const [instance, backend] of Object.entries(calling)) {
  test(`${instance}: function tool round trip, buffered, continued with previous_response_id only`, async () => {
    const sent = [];
    const openai = client(instance, { onRequest: (body) => sent.push(JSON.parse(body)) });
    const { data: first, response } = await openai.responses
      .create({ model: 'gpt-4', instructions: 'Use the tools.', input: 'Weather in Paris?', tools: [weather, webSearch] })
      .withResponse();
    assert.equal(response.headers.get('x-backend'), backend);
    const call = checkCall(first);

    const second = await openai.responses.create({
      model: 'gpt-4',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output }],
      tools: [weather, webSearch],
    });
    assert.deepEqual(Object.keys(sent[1].input[0]), ['type', 'call_id', 'output'], 'the client sent the output alone');
    assert.match(second.id, responseID);
    assert.notEqual(second.id, first.id);
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.status, 'completed');
    assert.equal(second.output_text, weatherReply);

    // The second response's input items are the whole conversation: the
    // question, the call and its output (oldest first when asked so).
    const items = [];
    for await (const item of openai.responses.inputItems.list(second.id, { order: 'asc' })) items.push(item);
    assert.deepEqual(items.map((i) => i.type), ['message', 'function_call', 'function_call_output'], JSON.stringify(items));
    assert.ok(items.every((i) => i.id), 'every input item has an id');
    assert.equal(items[1].call_id, call.call_id);
    assert.equal(items[2].call_id, call.call_id);
    assert.equal(items[2].output, output);
    const desc = await openai.responses.inputItems.list(second.id, { limit: 2 });
    assert.deepEqual(desc.data.map((i) => i.type), ['function_call_output', 'function_call'], 'newest first by default');
    assert.equal(desc.has_more, true);

    await openai.responses.delete(second.id);
    await openai.responses.delete(first.id);
    await assert.rejects(openai.responses.retrieve(first.id), OpenAI.NotFoundError);
  });

  test(`${instance}: function tool round trip, streamed`, async () => {
    const openai = client(instance);
    const args = [];
    const firstStream = openai.responses
      .stream({ model: 'gpt-4', input: 'Weather in Paris?', tools: [weather, webSearch] })
      .on('response.function_call_arguments.done', (e) => args.push([e.name, e.arguments]));
    const first = await firstStream.finalResponse();
    const call = checkCall(first);
    assert.deepEqual(args.map(([name, a]) => [name, JSON.parse(a)]), [['get_weather', { city: 'Paris' }]]);

    const types = [];
    const secondStream = openai.responses.stream({
      model: 'gpt-4',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output }],
    });
    for await (const e of secondStream) types.push(e.type);
    const second = await secondStream.finalResponse();
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.output_text, weatherReply);
  });
}
