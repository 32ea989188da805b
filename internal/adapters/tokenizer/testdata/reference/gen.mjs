// Regenerates the reference data that internal/adapters/tokenizer's tests
// compare against, using the npm package "tiktoken" (WASM build of OpenAI's
// Rust tiktoken core, so its regex pre-tokenization and BPE are the reference
// implementation's own).
//
//   cd internal/adapters/tokenizer/testdata/reference && npm ci && node gen.mjs
//
// It writes, relative to testdata/:
//   corpus/long_mixed.txt   a deterministic (seeded) text of ~48 KB
//   reference_counts.json   the SHA-256, token counts (and ids, for files up
//                           to 4 KiB) of every corpus file, and the chat prompt
//                           counts of prompts.json
//
// Text is encoded with encode_ordinary: special-token text such as
// "<|endoftext|>" counts as ordinary text, as it does in the Go counter.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { get_encoding } from "tiktoken";

const here = dirname(fileURLToPath(import.meta.url));
const testdata = join(here, "..");
const corpusDir = join(testdata, "corpus");
const encodings = ["o200k_base", "cl100k_base"];
// Files up to this size also get their token ids recorded.
const idsMaxBytes = 4096;

// Chat overhead from OpenAI's cookbook "How to count tokens with tiktoken":
// 3 tokens per message, +1 when a name is set, +3 priming the assistant reply.
const tokensPerMessage = 3;
const tokensPerName = 1;
const replyPriming = 3;

writeFileSync(join(corpusDir, "long_mixed.txt"), longText(48 * 1024));

const version = JSON.parse(readFileSync(join(here, "node_modules", "tiktoken", "package.json"), "utf8")).version;
const out = { generator: `tiktoken@${version} (npm), encode_ordinary`, files: {}, prompts: {} };
const enc = Object.fromEntries(encodings.map((name) => [name, get_encoding(name)]));

const names = readdirSync(corpusDir).filter((n) => !n.startsWith(".")).sort();
for (const name of names) {
  const bytes = readFileSync(join(corpusDir, name));
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  const entry = { sha256: createHash("sha256").update(bytes).digest("hex") };
  for (const e of encodings) {
    const ids = Array.from(enc[e].encode_ordinary(text));
    entry[e] = ids.length;
    if (bytes.length <= idsMaxBytes) entry[`tokens_${e.replace("_base", "")}`] = ids;
  }
  out.files[name] = entry;
}

const prompts = JSON.parse(readFileSync(join(testdata, "prompts.json"), "utf8"));
for (const [name, messages] of Object.entries(prompts)) {
  const entry = {};
  for (const e of encodings) {
    let n = replyPriming;
    for (const m of messages) {
      n += tokensPerMessage + count(e, m.role) + count(e, m.content);
      if (m.name) n += tokensPerName + count(e, m.name);
    }
    entry[e] = n;
  }
  out.prompts[name] = entry;
}

for (const e of Object.values(enc)) e.free();
writeFileSync(join(testdata, "reference_counts.json"), format(out));
console.log(`wrote ${names.length} corpus files and ${Object.keys(out.prompts).length} prompts with tiktoken@${version}`);

function count(e, text) {
  return text ? enc[e].encode_ordinary(text).length : 0;
}

// JSON with one line per id list, so diffs stay readable.
function format(value) {
  return (
    JSON.stringify(value, null, 2).replace(/\[\s*([-\d,\s]*?)\s*\]/g, (_, body) =>
      "[" + body.split(/\s*,\s*/).filter(Boolean).join(", ") + "]",
    ) + "\n"
  );
}

// longText returns a deterministic mix of prose, code, numbers, Unicode and
// emoji of at least minBytes UTF-8 bytes, from a seeded PRNG (mulberry32).
function longText(minBytes) {
  let seed = 20240531;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const words = (
    "the of and to in is that it for on with as was by at be this from or an are " +
    "gateway upstream model token usage request response stream latency cache " +
    "estimate prompt completion message assistant system user tool function " +
    "throughput benchmark encoder decoder vocabulary merge rank byte pair regex " +
    "Kubernetes PostgreSQL OpenAI JSON HTTP/2 WebSocket TLS SSE gRPC YAML"
  ).split(" ");
  const fragments = [
    "Don't panic; I'LL handle it, we're fine.",
    "Café, naïve, Straße, Łódź, Tiếng Việt.",
    "中文分词测试，日本語のテキスト、한국어 문장.",
    "مرحبا بالعالم، नमस्ते दुनिया।",
    "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 1️⃣ 🎉🎉",
    "<|endoftext|>",
    "$1,234.56 (+3.2%) on 2024-05-31T12:00:00Z",
  ];
  const code = [
    "func add(a, b int) int {\n\treturn a + b\n}\n",
    "def f(x):\n    return [i ** 2 for i in range(x) if i % 3]\n",
    '{\n    "role": "user",\n    "content": "hi"\n}\n',
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '1 day';\n",
  ];
  const parts = [];
  let size = 0;
  while (size < minBytes) {
    let para;
    const r = rand();
    if (r < 0.15) {
      para = pick(code);
    } else if (r < 0.2) {
      para = " ".repeat(1 + Math.floor(rand() * 12)) + "\t".repeat(Math.floor(rand() * 3)) + "\n";
    } else {
      const sentences = [];
      const ns = 2 + Math.floor(rand() * 5);
      for (let s = 0; s < ns; s++) {
        if (rand() < 0.25) {
          sentences.push(pick(fragments));
          continue;
        }
        const nw = 4 + Math.floor(rand() * 14);
        const ws = [];
        for (let w = 0; w < nw; w++) {
          let word = pick(words);
          const q = rand();
          if (q < 0.05) word = String(Math.floor(rand() * 1e7));
          else if (q < 0.08) word = word.toUpperCase();
          ws.push(word);
        }
        const sentence = ws.join(" ");
        sentences.push(sentence[0].toUpperCase() + sentence.slice(1) + pick([".", ".", ".", "!", "?", ";", ":"]));
      }
      para = sentences.join(" ") + pick(["\n\n", "\n", "\n\n\n", "  \n"]);
    }
    parts.push(para);
    size += Buffer.byteLength(para);
  }
  return parts.join("");
}
