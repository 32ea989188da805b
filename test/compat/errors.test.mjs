// Errors as the SDK's typed exceptions (maxRetries 0 everywhere).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, OpenAI } from './compat.mjs';

const messages = [{ role: 'user', content: 'Hi' }];

test('unknown model: NotFoundError model_not_found', async () => {
  const openai = client('gateway');
  await assert.rejects(openai.chat.completions.create({ model: 'no-such-model', messages }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.param, 'model');
    assert.match(err.message, /no-such-model/);
    assert.equal(err.error?.code, 'model_not_found');
    return true;
  });
});

test('unknown model, streamed: NotFoundError before any chunk', async () => {
  const openai = client('gateway');
  await assert.rejects(
    (async () => {
      const stream = await openai.chat.completions.create({ model: 'no-such-model', messages, stream: true });
      for await (const chunk of stream) assert.fail(`unexpected chunk ${JSON.stringify(chunk)}`);
    })(),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.code, 'model_not_found');
      return true;
    },
  );
});

test('unknown model: models.retrieve NotFoundError', async () => {
  const openai = client('gateway');
  await assert.rejects(openai.models.retrieve('no-such-model'), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.code, 'model_not_found');
    return true;
  });
});

test('bad request: temperature 5 is a BadRequestError on param temperature', async () => {
  const openai = client('gateway');
  await assert.rejects(openai.chat.completions.create({ model: 'gpt-4', messages, temperature: 5 }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.param, 'temperature');
    return true;
  });
});

test('bad request, streamed: BadRequestError before any chunk', async () => {
  const openai = client('gateway');
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4', messages, temperature: 5, stream: true }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.param, 'temperature');
      return true;
    },
  );
});

test('every backend down: APIError 503', async () => {
  const openai = client('down');
  await assert.rejects(openai.chat.completions.create({ model: 'gpt-4', messages }), (err) => {
    assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err}`);
    assert.ok(err instanceof OpenAI.InternalServerError, `got ${err?.constructor?.name}`);
    assert.equal(err.status, 503);
    assert.equal(err.type, 'server_error');
    assert.equal(err.code, 'upstream_unavailable');
    return true;
  });
});

test('every backend down, streamed: APIError 503 before any chunk', async () => {
  const openai = client('down');
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4', messages, stream: true }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 503);
      return true;
    },
  );
});

test('every backend down: x-should-retry false keeps the SDK from retrying', async () => {
  const responses = [];
  const openai = client('down', { maxRetries: 2, onResponse: (r) => responses.push(r) });
  await assert.rejects(openai.chat.completions.create({ model: 'gpt-4', messages }), (err) => {
    assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 503);
    return true;
  });
  assert.equal(responses.length, 1, `the SDK sent ${responses.length} requests`);
  assert.equal(responses[0].headers.get('x-should-retry'), 'false');
});

test('stream broken mid-way: the in-band error frame surfaces as an APIError', async () => {
  const openai = client('broken');
  const stream = await openai.chat.completions.create({ model: 'gpt-4', messages, stream: true });
  let content = '';
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
    })(),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, undefined, 'an in-band error has no HTTP status');
      assert.match(String(err.error?.code ?? ''), /^upstream_/, JSON.stringify(err.error));
      assert.equal(err.error?.type, 'server_error');
      return true;
    },
  );
  assert.equal(content, 'one two ', 'what the gateway sent before breaking');
});
