// Service features the SDK must get along with: keep-alive pings (SSE
// comments) while the first token is slow, and API keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, completionID, OpenAI } from './compat.mjs';

const reply = 'Hello from the gateway!';
const messages = [{ role: 'user', content: 'Say hello, slowly.' }];

test('keep-alive pings before a slow first token: the SDK ignores them', async () => {
  const openai = client('slow');
  const stream = await openai.chat.completions.create({
    model: 'gpt-4',
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.match(chunks[0].id, completionID);
  assert.equal(chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join(''), reply);
  assert.equal(chunks.at(-1).usage?.total_tokens, 17);
});

test('keep-alive pings: stream helper', async () => {
  const openai = client('slow');
  const final = await openai.chat.completions.stream({ model: 'gpt-4', messages }).finalChatCompletion();
  assert.equal(final.choices[0].message.content, reply);
  assert.equal(final.choices[0].finish_reason, 'stop');
});

test('keep-alive pings, then the backend fails: an in-band APIError', async () => {
  // The pings committed the 200, so the failure can only come in-band.
  const openai = client('slowFail');
  const stream = await openai.chat.completions.create({ model: 'gpt-4', messages, stream: true });
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) assert.fail(`unexpected chunk ${JSON.stringify(chunk)}`);
    })(),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.error?.type, 'server_error', JSON.stringify(err.error));
      assert.match(String(err.error?.code), /^upstream_/);
      return true;
    },
  );
});

test('slow backend, buffered: no pings, a plain answer', async () => {
  const openai = client('slow');
  const c = await openai.chat.completions.create({ model: 'gpt-4', messages });
  assert.equal(c.choices[0].message.content, reply);
});

test('API key: a wrong key is an AuthenticationError', async () => {
  const openai = client('secured', { apiKey: 'wrong-key' });
  await assert.rejects(openai.chat.completions.create({ model: 'gpt-4', messages }), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 401);
    assert.equal(err.code, 'invalid_api_key');
    return true;
  });
  await assert.rejects(openai.models.list(), OpenAI.AuthenticationError);
});

test('API key: the right key is served', async () => {
  const openai = client('secured', { apiKey: 'compat-key' });
  const c = await openai.chat.completions.create({ model: 'gpt-4', messages });
  assert.equal(c.choices[0].message.content, reply);
  const stream = await openai.chat.completions.create({ model: 'gpt-4', messages, stream: true });
  let content = '';
  for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(content, reply);
});
