// JSON mode (response_format json_object) through both protocols, and
// Structured Outputs (json_schema) through Ollama, whose fake must receive
// the schema as `format` (compat_test.go checks that once node is done).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, completionID, personSchema } from './compat.mjs';

const json_schema = { name: 'person', schema: personSchema, strict: true };

test('json mode via gateway: content parses as JSON', async () => {
  const openai = client('gatewayJSON');
  const c = await openai.chat.completions.create({
    model: 'gpt-4',
    messages: [{ role: 'user', content: 'Weather in Paris, as JSON.' }],
    response_format: { type: 'json_object' },
  });
  assert.match(c.id, completionID);
  assert.deepEqual(JSON.parse(c.choices[0].message.content), { city: 'Paris', temp_c: 21 });
});

test('json mode via ollama: content parses as JSON', async () => {
  const openai = client('ollama');
  const c = await openai.chat.completions.create({
    model: 'gpt-4',
    messages: [{ role: 'user', content: 'json_object: Ollama is 22.' }],
    response_format: { type: 'json_object' },
  });
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.deepEqual(JSON.parse(c.choices[0].message.content), { age: 22, available: false });
});

test('json_schema via ollama: chat.completions.parse', async () => {
  const openai = client('ollama');
  const c = await openai.chat.completions.parse({
    model: 'gpt-4',
    messages: [{ role: 'user', content: 'json_schema: Ollama is 22.' }],
    response_format: { type: 'json_schema', json_schema },
  });
  assert.equal(c.model, 'gpt-4');
  assert.deepEqual(c.choices[0].message.parsed, { age: 22, available: false });
});

test('json_schema via ollama: streamed', async () => {
  const openai = client('ollama');
  const stream = openai.chat.completions.stream({
    model: 'gpt-4',
    messages: [{ role: 'user', content: 'json_schema stream: Ollama is 22.' }],
    response_format: { type: 'json_schema', json_schema },
  });
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'stop');
  assert.deepEqual(JSON.parse(final.choices[0].message.content), { age: 22, available: false });
});
