// Plain and streamed chat completions through the gateway protocol, and the
// model list, as the official openai package sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, completionID } from './compat.mjs';

const reply = 'Hello from the gateway!'; // gatewaytest's default reply
const usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }; // and its usage
const messages = [{ role: 'user', content: 'Say hello.' }];

test('plain: chat.completions.create', async () => {
  const openai = client('gateway');
  const before = Math.floor(Date.now() / 1000);
  const { data: c, response } = await openai.chat.completions
    .create({ model: 'gpt-4', messages })
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-backend'), 'gateway');
  assert.match(c._request_id ?? '', /^req_/, 'the SDK exposes x-request-id as _request_id');
  assert.match(c.id, completionID);
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.model, 'gpt-4', 'model echoes the requested name');
  assert.ok(c.created >= before && c.created <= Math.ceil(Date.now() / 1000), `created ${c.created}`);
  assert.equal(c.choices.length, 1);
  assert.equal(c.choices[0].index, 0);
  assert.equal(c.choices[0].message.role, 'assistant');
  assert.equal(c.choices[0].message.content, reply);
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.deepEqual(
    { prompt_tokens: c.usage.prompt_tokens, completion_tokens: c.usage.completion_tokens, total_tokens: c.usage.total_tokens },
    usage,
  );
});

test('streamed: for await over chunks with include_usage', async () => {
  const openai = client('gateway');
  const stream = await openai.chat.completions.create({
    model: 'gpt-4',
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 3, `got ${chunks.length} chunks`);

  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1, 'one id for the whole stream');
  assert.match(chunks[0].id, completionID);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, 'gpt-4');
  }
  const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
  assert.equal(content, reply);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');

  const last = chunks.at(-1);
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assert.deepEqual(
    { prompt_tokens: last.usage.prompt_tokens, completion_tokens: last.usage.completion_tokens, total_tokens: last.usage.total_tokens },
    usage,
  );
  for (const c of chunks.slice(0, -1)) {
    assert.ok(c.usage == null, `only the last chunk carries usage, not ${JSON.stringify(c)}`);
  }
  const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f != null);
  assert.deepEqual(finishes, ['stop']);
});

test('streamed: chat.completions.stream helper and finalChatCompletion', async () => {
  const openai = client('gateway');
  const deltas = [];
  let doneContent;
  const stream = openai.chat.completions
    .stream({ model: 'gpt-4', messages, stream_options: { include_usage: true } })
    .on('content.delta', ({ delta }) => deltas.push(delta))
    .on('content.done', ({ content }) => (doneContent = content));
  const final = await stream.finalChatCompletion();
  assert.match(final.id, completionID);
  assert.equal(final.model, 'gpt-4');
  assert.equal(final.choices.length, 1);
  assert.equal(final.choices[0].message.role, 'assistant');
  assert.equal(final.choices[0].message.content, reply);
  assert.equal(final.choices[0].finish_reason, 'stop');
  assert.equal(deltas.join(''), reply);
  assert.equal(doneContent, reply);
  assert.equal(await stream.finalContent(), reply);
  const total = await stream.totalUsage();
  assert.deepEqual(
    { prompt_tokens: total.prompt_tokens, completion_tokens: total.completion_tokens, total_tokens: total.total_tokens },
    usage,
  );
});

test('streamed without include_usage: no usage chunk', async () => {
  const openai = client('gateway');
  const stream = await openai.chat.completions.create({ model: 'gpt-4', messages, stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.every((c) => c.choices.length === 1), 'every chunk has its choice');
  assert.ok(chunks.every((c) => c.usage == null), 'no chunk carries usage');
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), reply);
});

test('models: list and retrieve', async () => {
  const openai = client('gateway');
  const ids = [];
  for await (const m of openai.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.includes('gpt-4'), `gpt-4 in ${ids}`);
  assert.ok(ids.includes('qwen2.5:32b'), `qwen2.5:32b in ${ids}`);
  const m = await openai.models.retrieve('gpt-4');
  assert.equal(m.id, 'gpt-4');
  assert.equal(m.object, 'model');
  assert.equal(typeof m.created, 'number');
  assert.equal(typeof m.owned_by, 'string');
});
