// Loads a GGUF file in llama.cpp (node-llama-cpp's prebuilt CPU binary) and parses its
// header with @huggingface/gguf, for the GGUF export test (tests/gguf/test_gguf_llama_cpp.cpp).
// Usage: node run_gguf.mjs MODEL.gguf PROMPT_FILE N OUT.json [FORCED.json]
// Writes {prompt_ids, greedy (N ids after the prompt, greedy), metadata (the header's keys
// except the token lists), tensors: [{name, shape, dtype}]}. With FORCED.json (an array of
// ids), also `forced`: the prompt followed by those ids is evaluated teacher-forced, and for
// each forced id llama.cpp's next-token distribution at its position gives {top, p_top,
// p_forced}, so a test can tell a real disagreement from a near tie that rounding flips.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const here = path.dirname(new URL(import.meta.url).pathname);
const pkg = (p) => pathToFileURL(path.join(here, 'node', 'node_modules', p)).href;
const { getLlama, LlamaLogLevel } = await import(pkg('node-llama-cpp/dist/index.js'));
const { gguf } = await import(pkg('@huggingface/gguf/dist/index.mjs'));

const [modelPath, promptFile, nText, outFile, forcedFile] = process.argv.slice(2);
if (!outFile) throw new Error('usage: node run_gguf.mjs MODEL.gguf PROMPT_FILE N OUT.json');
const prompt = fs.readFileSync(promptFile, 'utf8');
const n = Number(nText);

const header = await gguf(path.resolve(modelPath), { allowLocalFile: true });
const metadata = {};
for (const [k, v] of Object.entries(header.metadata))
  metadata[k] = Array.isArray(v) ? { length: v.length, first: v.slice(0, 3), last: v[v.length - 1] } : v;
for (const k of Object.keys(metadata)) if (typeof metadata[k] === 'bigint') metadata[k] = Number(metadata[k]);
const tensors = header.tensorInfos.map((t) => ({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype }));

// CPU only, the prebuilt binary, never a build: the test must not depend on a compiler or a GPU.
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn });
const model = await llama.loadModel({ modelPath: path.resolve(modelPath), gpuLayers: 0 });
const context = await model.createContext({ contextSize: 64, threads: 2 });
const sequence = context.getSequence();
const promptIds = model.tokenize(prompt, false);
const greedy = [];
for await (const token of sequence.evaluate(promptIds, { temperature: 0 })) {
  greedy.push(token);
  if (greedy.length >= n) break;
}
let forced;
if (forcedFile) {
  const want = JSON.parse(fs.readFileSync(forcedFile, 'utf8'));
  await sequence.clearHistory();
  const input = [...promptIds, ...want].map((t, i) =>
    i >= promptIds.length - 1 && i < promptIds.length - 1 + want.length ? [t, { generateNext: { probabilities: true } }] : t);
  const out = await sequence.controlledEvaluate(input);
  forced = want.map((w, k) => {
    const probs = out[promptIds.length - 1 + k].next.probabilities;
    const [top, pTop] = probs.entries().next().value;
    return { top, p_top: pTop, p_forced: probs.get(w) ?? 0 };
  });
}
fs.writeFileSync(outFile, JSON.stringify({ prompt_ids: promptIds, greedy, forced, metadata, tensors, eog: model.tokens.eos }));
await context.dispose();
await model.dispose();
await llama.dispose();
