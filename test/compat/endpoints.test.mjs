// /v1/embeddings and /v1/completions, and log probabilities, as the
// official openai package sees them, through both protocols.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, OpenAI } from './compat.mjs';

const input = ['The quick brown fox', 'jumps over the lazy dog'];

for (const instance of ['gateway', 'ollama']) {
  test(`${instance}: embeddings.create decodes the default base64 to the same vectors as float`, async () => {
    const openai = client(instance);
    let sentFormat;
    const viaBase64 = await client(instance, {
      onRequest: (body) => { sentFormat = JSON.parse(body).encoding_format; },
    }).embeddings.create({ model: 'text-embedding-3-small', input });
    assert.equal(sentFormat, 'base64', 'the SDK asks for base64 when the caller names no format');
    const viaFloat = await openai.embeddings.create({ model: 'text-embedding-3-small', input, encoding_format: 'float' });
    assert.equal(viaBase64.data.length, 2);
    assert.equal(viaBase64.model, 'text-embedding-3-small');
    for (const i of [0, 1]) {
      assert.equal(viaBase64.data[i].index, i);
      assert.ok(viaBase64.data[i].embedding.length > 0);
      // The SDK decodes base64 into float32 values; float JSON read as
      // float32 must be the very same numbers.
      assert.deepEqual(viaBase64.data[i].embedding, Array.from(Float32Array.from(viaFloat.data[i].embedding)));
    }
    assert.ok(viaFloat.usage.prompt_tokens > 0 && viaFloat.usage.total_tokens === viaFloat.usage.prompt_tokens);
  });

  test(`${instance}: embeddings from token ids (LangChain's default) and with dimensions`, async () => {
    const openai = client(instance);
    const e = await openai.embeddings.create({ model: 'text-embedding-3-small', input: [[791, 4062, 14198, 39935]], dimensions: 4 });
    assert.equal(e.data.length, 1);
    assert.equal(e.data[0].embedding.length, 4);
  });

  test(`${instance}: completions.create with a suffix (fill in the middle), buffered and streamed`, async () => {
    const openai = client(instance);
    const c = await openai.completions.create({ model: 'gpt-4', prompt: 'def add(a, b):\n', suffix: '\n\nprint(add(1, 2))', max_tokens: 32 });
    assert.equal(c.object, 'text_completion');
    assert.match(c.id, /^cmpl-[A-Z2-7]{26}$/);
    assert.equal(c.model, 'gpt-4');
    assert.equal(c.choices.length, 1);
    assert.ok(c.choices[0].text.length > 0);
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.ok(c.usage.total_tokens > 0);

    const stream = await openai.completions.create({ model: 'gpt-4', prompt: 'def add(a, b):\n', stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        text += ch.text;
        finish = ch.finish_reason ?? finish;
      }
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, c.choices[0].text);
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.total_tokens > 0, 'the usage chunk arrived');
  });

  test(`${instance}: legacy completion logprobs`, async () => {
    const openai = client(instance);
    const c = await openai.completions.create({ model: 'gpt-4', prompt: 'Say hi', logprobs: 2, max_tokens: 8 });
    const lp = c.choices[0].logprobs;
    assert.ok(lp.tokens.length > 0);
    assert.equal(lp.tokens.length, lp.token_logprobs.length);
    assert.equal(lp.tokens.length, lp.text_offset.length);
    assert.equal(lp.tokens.join(''), c.choices[0].text);
    assert.equal(lp.text_offset[0], 0);
  });
}

test('ollama: chat logprobs, buffered and streamed', async () => {
  const openai = client('ollama');
  const params = { model: 'gpt-4', messages: [{ role: 'user', content: 'Say hi' }], logprobs: true, top_logprobs: 2 };
  const chat = await openai.chat.completions.create(params);
  const content = chat.choices[0].logprobs.content;
  assert.ok(content.length > 0);
  assert.equal(content.map((t) => t.token).join(''), chat.choices[0].message.content);
  assert.ok(content.every((t) => typeof t.logprob === 'number' && Array.isArray(t.bytes) && t.top_logprobs.length === 2));
  const final = await openai.chat.completions.stream(params).finalChatCompletion();
  assert.deepEqual(final.choices[0].logprobs.content.map((t) => t.token), content.map((t) => t.token));
});

test('ollama: an input longer than the model takes is a 400 naming it', async () => {
  const openai = client('ollama');
  await assert.rejects(
    openai.embeddings.create({ model: 'text-embedding-3-small', input: ['short', 'x'.repeat(5000)] }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'input[1]',
  );
});
