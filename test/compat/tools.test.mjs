// Two parallel tool calls, replayed from the recordings under
// internal/adapters/httpapi/testdata/replay/{gateway,ollama}_parallel_tools,
// rebuilt by the SDK: buffered, and streamed through the stream helper.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, completionID } from './compat.mjs';

const messages = [{ role: 'user', content: 'Weather in Paris and Rome?' }];
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } } },
    },
  },
];

// What each recording holds. The gateway passes the upstream's call ids
// through; for Ollama, which has none, the service makes them up.
const cases = {
  gatewayTools: {
    protocol: 'gateway',
    args: [{ city: 'Paris' }, { city: 'Rome' }],
    ids: (a, b) => assert.deepEqual([a, b], ['call_up1', 'call_up2']),
  },
  ollamaTools: {
    protocol: 'ollama',
    args: [{ city: 'Paris' }, { city: 'Rome', unit: 'c' }],
    ids: (a, b) => {
      assert.match(a, /^call_[A-Za-z0-9_-]+$/);
      assert.match(b, /^call_[A-Za-z0-9_-]+$/);
      assert.notEqual(a, b, 'call ids are distinct');
    },
  },
};

function checkMessage(c, message, finishReason) {
  assert.equal(finishReason, 'tool_calls');
  assert.equal(message.role, 'assistant');
  assert.ok(message.content == null || message.content === '', `content ${JSON.stringify(message.content)}`);
  assert.equal(message.tool_calls?.length, 2, JSON.stringify(message.tool_calls));
  message.tool_calls.forEach((call, i) => {
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), c.args[i]);
  });
  c.ids(message.tool_calls[0].id, message.tool_calls[1].id);
}

for (const [instance, c] of Object.entries(cases)) {
  test(`tools buffered via ${c.protocol}`, async () => {
    const openai = client(instance);
    const { data, response } = await openai.chat.completions.create({ model: 'gpt-4', messages, tools }).withResponse();
    assert.equal(response.headers.get('x-backend'), c.protocol);
    assert.match(data.id, completionID);
    assert.equal(data.model, 'gpt-4');
    assert.equal(data.choices.length, 1);
    checkMessage(c, data.choices[0].message, data.choices[0].finish_reason);
  });

  test(`tools streamed via ${c.protocol}: stream helper and finalChatCompletion`, async () => {
    const openai = client(instance);
    const done = [];
    const stream = openai.chat.completions
      .stream({ model: 'gpt-4', messages, tools })
      .on('tool_calls.function.arguments.done', (e) => done.push(e));
    const final = await stream.finalChatCompletion();
    assert.match(final.id, completionID);
    assert.equal(final.model, 'gpt-4');
    assert.equal(final.choices.length, 1);
    checkMessage(c, final.choices[0].message, final.choices[0].finish_reason);
    // The helper saw each call complete, in order.
    assert.deepEqual(
      done.map((e) => [e.index, e.name, JSON.parse(e.arguments)]),
      c.args.map((a, i) => [i, 'get_weather', a]),
    );
    const fn = await stream.finalFunctionToolCall();
    assert.equal(fn?.name, 'get_weather');
    assert.deepEqual(JSON.parse(fn.arguments), c.args[1]);
  });

  test(`tools streamed via ${c.protocol}: raw chunks`, async () => {
    const openai = client(instance);
    const stream = await openai.chat.completions.create({ model: 'gpt-4', messages, tools, stream: true });
    const seen = new Map(); // index -> {id, name, arguments}
    let finish;
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        for (const d of ch.delta.tool_calls ?? []) {
          assert.equal(typeof d.index, 'number', 'every tool call delta has an index');
          const s = seen.get(d.index) ?? { arguments: '' };
          if (d.id) {
            assert.equal(s.id, undefined, `tool call ${d.index} got a second id`);
            s.id = d.id;
          }
          if (d.function?.name) s.name = d.function.name;
          s.arguments += d.function?.arguments ?? '';
          seen.set(d.index, s);
        }
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.deepEqual([...seen.keys()], [0, 1]);
    assert.deepEqual([...seen.values()].map((s) => JSON.parse(s.arguments)), c.args);
    c.ids(seen.get(0).id, seen.get(1).id);
  });
}
