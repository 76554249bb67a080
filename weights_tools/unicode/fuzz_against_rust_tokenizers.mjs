// Differential check of blip_tokenize against Hugging Face's Rust `tokenizers` (its official
// Node binding, npm tokenizers@0.23.2, the build the fixtures were made with).
//
//   npm install tokenizers@0.23.2                       (in any folder; run from that folder)
//   node fuzz_against_rust_tokenizers.mjs generate TOKENIZER_DIR COUNT SEED OUT_DIR
//   blip_tokenize TOKENIZER_DIR < OUT_DIR/input.jsonl > OUT_DIR/actual.jsonl
//   node fuzz_against_rust_tokenizers.mjs compare OUT_DIR
//
// `generate` writes random texts (ASCII words and punctuation, accents and combining marks,
// CJK incl. the U+2B820 range, Hangul, emoji, special tokens, every kind of whitespace and
// control, long words, random code points of every plane) to input.jsonl, and what the Rust
// library gives for them to expected.jsonl in blip_tokenize's format: ids and tokens of
// encode(text) with special tokens, decoded = decode(ids, skip_special_tokens=true) followed by
// transformers' clean_up_tokenization (the Python step the Rust library does not do).
// `codepoints` instead of `generate` writes one text per code point ("x" + c + " " + c + "y").
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(`${process.cwd()}/`);

function cleanUpTokenization(text) {  // transformers PreTrainedTokenizerBase.clean_up_tokenization
  return text.replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',')
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

function randomGenerator(seed) {  // mulberry32: reproducible without dependencies
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6D2B79F5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomText(random) {
  const pick = (items) => items[Math.floor(random() * items.length)];
  const range = (first, last) => String.fromCodePoint(first + Math.floor(random() * (last - first + 1)));
  const words = ['a', 'dog', 'the', 'picture', 'of', 'two', 'cats', 'running', 'unaffable', 'tokenization',
    "isn't", "it's", 'Question', 'Answer', 'HELLO', 'Straße', 'naïve', 'Ångström', 'ΟΔΟΣ', 'İstanbul', 'x'];
  const generators = [
    () => pick(words), () => ' ', () => ' ', () => pick(['.', ',', '?', '!', "'", '"', ':', ';', '-', '$', '#', '(', ')']),
    () => range(0x21, 0x7E), () => range(0xC0, 0x24F), () => range(0x300, 0x36F), () => range(0x591, 0x5C7),
    () => range(0x900, 0x97F), () => range(0x1DC0, 0x1DFF), () => range(0x20D0, 0x20FF), () => range(0x1D165, 0x1D169),
    () => range(0x4E00, 0x9FFF), () => range(0x2B800, 0x2B93F), () => range(0xF900, 0xFAFF), () => range(0xAC00, 0xD7A3),
    () => range(0x3040, 0x30FF), () => range(0x1F300, 0x1FAFF), () => range(0x2000, 0x206F), () => range(0x3000, 0x303F),
    () => range(0xFF00, 0xFFEF), () => range(0x1E900, 0x1E95F), () => range(0x16EA0, 0x16EDF), () => range(0xA720, 0xA7FF),
    () => range(0x10D40, 0x10D8F), () => range(0x0370, 0x03FF), () => range(0x0400, 0x04FF),
    () => pick(['[SEP]', '[CLS]', '[UNK]', '[MASK]', '[PAD]', '[sep]', '[SEP', '[[SEP]]', '[DEC]']),
    () => pick(['\t', '\n', '\r', '\v', '\f', '\u0085', '\u00A0', '\u1680', '\u180E', '\u2007', '\u2028', '\u3000', '\u200B', '\uFEFF', '\u0000', '\uFFFD', '\u202E', '\uE000']),
    () => pick(['y'.repeat(100), 'z'.repeat(101), 'ab'.repeat(60), 'é'.repeat(101)]),
    () => { let cp; do { cp = Math.floor(random() * 0x110000); } while (cp >= 0xD800 && cp <= 0xDFFF); return String.fromCodePoint(cp); },
  ];
  const pieces = [];
  const length = 1 + Math.floor(random() * 24);
  for (let i = 0; i < length; ++i) pieces.push(pick(generators)());
  return pieces.join(random() < 0.5 ? '' : ' ');
}

async function expectedFor(tokenizer, text) {
  const encoding = await tokenizer.encode(text);
  const ids = encoding.getIds();
  return { ids, tokens: encoding.getTokens(), decoded: cleanUpTokenization(await tokenizer.decode(ids, true)) };
}

async function writeCases(tokenizerDir, texts, outDir) {
  const { Tokenizer } = require('tokenizers');
  const tokenizer = Tokenizer.fromFile(path.join(tokenizerDir, 'tokenizer.json'));
  fs.mkdirSync(outDir, { recursive: true });
  const input = [], expected = [];
  for (const text of texts) {
    input.push(JSON.stringify({ text }));
    expected.push(JSON.stringify(await expectedFor(tokenizer, text)));
  }
  fs.writeFileSync(path.join(outDir, 'input.jsonl'), input.join('\n') + '\n');
  fs.writeFileSync(path.join(outDir, 'expected.jsonl'), expected.join('\n') + '\n');
  console.log(`wrote ${texts.length} cases to ${outDir}`);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'generate') {
  const [tokenizerDir, count, seed, outDir] = args;
  const random = randomGenerator(Number(seed));
  const texts = Array.from({ length: Number(count) }, () => randomText(random));
  await writeCases(tokenizerDir, texts, outDir);
} else if (mode === 'codepoints') {
  const [tokenizerDir, outDir] = args;
  const texts = [];
  for (let cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const c = String.fromCodePoint(cp);
    texts.push(`x${c} ${c}y`);
  }
  await writeCases(tokenizerDir, texts, outDir);
} else if (mode === 'compare') {
  const [outDir] = args;
  const read = (name) => fs.readFileSync(path.join(outDir, name), 'utf8').split('\n').filter((line) => line);
  const inputs = read('input.jsonl'), expected = read('expected.jsonl'), actual = read('actual.jsonl');
  let mismatches = 0;
  for (let i = 0; i < expected.length; ++i) {
    const want = JSON.parse(expected[i]), got = actual[i] === undefined ? null : JSON.parse(actual[i]);
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      if (++mismatches <= 10) console.log(`case ${i + 1}: ${inputs[i]}\n  rust: ${expected[i]}\n  blip: ${actual[i]}`);
    }
  }
  console.log(`${expected.length - mismatches} passed, ${mismatches} failed`);
  process.exitCode = mismatches === 0 && actual.length === expected.length ? 0 : 1;
} else {
  console.error('usage: fuzz_against_rust_tokenizers.mjs generate TOKENIZER_DIR COUNT SEED OUT_DIR | codepoints TOKENIZER_DIR OUT_DIR | compare OUT_DIR');
  process.exitCode = 2;
}
