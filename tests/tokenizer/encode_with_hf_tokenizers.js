// Encodes texts with @huggingface/tokenizers (Hugging Face's JavaScript tokenizers, which read
// tokenizer.json as the Rust library does) and prints their ids as one JSON list of lists:
//   node encode_with_hf_tokenizers.js TOKENIZER.json TOKENIZER_CONFIG.json TEXTS.json
// TEXTS.json holds a list of strings; special tokens are not added (add_special_tokens false),
// so the ids are those of the text alone. Used by tests/data/test_hf_tokenizers.cpp;
// scripts/setup_node_tools.sh installs the package.
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, 'node', 'node_modules', '@huggingface', 'tokenizers'));

const [tokenizerPath, configPath, textsPath] = process.argv.slice(2);
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerPath, 'utf-8')),
                                JSON.parse(fs.readFileSync(configPath, 'utf-8')));
const texts = JSON.parse(fs.readFileSync(textsPath, 'utf-8'));
process.stdout.write(JSON.stringify(texts.map((t) => tokenizer.encode(t, { add_special_tokens: false }).ids)));
