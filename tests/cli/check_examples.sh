#!/usr/bin/env bash
# usage: check_examples.sh CHECK BIN_DIR FIXTURES_DIR ASSETS_DIR
# Exit 0 = pass, 77 = skipped (inputs absent), anything else = failure.
set -u
check=$1 bin=$2 fixtures=$3 assets=$4
tokenizer="$assets/tokenizers/blip-image-captioning-base"
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

need "$fixtures/blip_caption" "$assets/images" "$tokenizer"
mapfile -t images < <(find "$assets/images" -type f \( -name '*.png' -o -name '*.jpg' \) | sort)
[ ${#images[@]} -gt 0 ] || fail "no photos in $assets/images"

case $check in
  caption)
    "$bin/blip_caption" "$fixtures/blip_caption" "${images[@]}" --tokenizer "$tokenizer" --beams 3 --max-new-tokens 8 \
      > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_caption exited with $?"; }
    lines=$(wc -l < "$work/out")
    [ "$lines" -eq ${#images[@]} ] || fail "expected ${#images[@]} caption lines, got $lines"
    for image in "${images[@]}"; do grep -qF "$image: " "$work/out" || fail "no caption line for $image"; done
    grep -q "captioned" "$work/err" || fail "no timing on stderr"
    ;;
  caption_json)
    "$bin/blip_caption" "$fixtures/blip_caption" "${images[@]}" --tokenizer "$tokenizer" --json > "$work/out" 2>/dev/null \
      || fail "blip_caption --json failed"
    python3 - "$work/out" ${#images[@]} <<'PY' || fail "bad JSON output"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert len(rows) == int(sys.argv[2]), rows
assert all(isinstance(r["caption"], str) and r["image"] for r in rows)
PY
    ;;
  caption_prompt)
    out=$("$bin/blip_caption" "$fixtures/blip_caption" "${images[0]}" --tokenizer "$tokenizer" --prompt "a picture of" 2>/dev/null) \
      || fail "blip_caption --prompt failed"
    # Conditional captioning: the caption starts with the prompt (HF returns the prompt ids).
    case "$out" in *": a picture of"*) ;; *) fail "caption does not start with the prompt: $out";; esac
    ;;
  caption_sample)
    first=$("$bin/blip_caption" "$fixtures/blip_caption" "${images[@]:0:2}" --tokenizer "$tokenizer" --sample --seed 7 --top-k 20 2>/dev/null) \
      || fail "sampling failed"
    second=$("$bin/blip_caption" "$fixtures/blip_caption" "${images[@]:0:2}" --tokenizer "$tokenizer" --sample --seed 7 --top-k 20 2>/dev/null)
    [ "$first" = "$second" ] || fail "same seed, different samples"
    ;;
  vqa)
    need "$fixtures/blip_vqa"
    "$bin/blip_vqa" "$fixtures/blip_vqa" "${images[0]}" "what is in the picture?" --tokenizer "$tokenizer" --json \
      > "$work/out" 2>/dev/null || fail "blip_vqa failed"
    python3 -c "import json,sys; r=json.load(open('$work/out')); assert isinstance(r['answer'], str)" || fail "bad JSON"
    ;;
  match)
    need "$fixtures/blip_itm"
    "$bin/blip_match" "$fixtures/blip_itm" --image "${images[0]}" --image "${images[1]}" --text "a dog" \
      --text "two cats on a sofa" --text "a rocket" --tokenizer "$tokenizer" --json > "$work/out" 2>/dev/null \
      || fail "blip_match failed"
    python3 - "$work/out" <<'PY' || fail "bad match table"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert len(rows) == 6, rows
for r in rows:
    assert 0.0 <= r["itm_probability"] <= 1.0 and -1.0001 <= r["itc_similarity"] <= 1.0001, r
PY
    ;;
  blip2)
    # BLIP-2 folders through the same programs: captions for every photo on both
    # input paths, a question, a chat of three turns, a match table.
    opt="$assets/tokenizers/blip2-opt-2.7b"
    need "$fixtures/blip2_opt" "$fixtures/blip2_opt_imgtok" "$fixtures/blip2_itm" "$opt"
    for folder in blip2_opt blip2_opt_imgtok; do
      "$bin/blip_caption" "$fixtures/$folder" "${images[@]}" --tokenizer "$opt" --beams 2 --max-new-tokens 6 \
        > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_caption on $folder"; }
      [ "$(wc -l < "$work/out")" -eq ${#images[@]} ] || fail "$folder: expected ${#images[@]} caption lines"
    done
    "$bin/blip_vqa" "$fixtures/blip2_opt_imgtok" "${images[0]}" "what is in the picture?" --tokenizer "$opt" --json \
      > "$work/out" 2>/dev/null || fail "blip_vqa on BLIP-2"
    python3 -c "import json; r=json.load(open('$work/out')); assert isinstance(r['answer'], str)" || fail "bad JSON"
    printf 'what is this?\n\nwhat colour is it?\nwhy?\n' | "$bin/blip_chat" "$fixtures/blip2_opt_imgtok" "${images[0]}" \
      --tokenizer "$opt" --max-new-tokens 5 --json > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_chat"; }
    python3 - "$work/out" <<'PY' || fail "bad chat output"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert [r["question"] for r in rows] == ["what is this?", "what colour is it?", "why?"], rows
assert all(isinstance(r["answer"], str) for r in rows)
PY
    "$bin/blip_chat" "$fixtures/blip_vqa" "${images[0]}" --tokenizer "$tokenizer" < /dev/null > /dev/null 2> "$work/err" \
      && fail "blip_chat accepted a BLIP folder"
    grep -q "BLIP-2" "$work/err" || fail "blip_chat on a BLIP folder: no clear message"
    # Flan-T5 folders through the same programs.
    t5="$assets/tokenizers/blip2-flan-t5-xl"
    need "$fixtures/blip2_t5" "$t5"
    "$bin/blip_caption" "$fixtures/blip2_t5" "${images[@]}" --tokenizer "$t5" --beams 2 --max-new-tokens 6 \
      > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_caption on blip2_t5"; }
    [ "$(wc -l < "$work/out")" -eq ${#images[@]} ] || fail "blip2_t5: expected ${#images[@]} caption lines"
    "$bin/blip_vqa" "$fixtures/blip2_t5" "${images[0]}" "what is in the picture?" --tokenizer "$t5" --json \
      > "$work/out" 2>/dev/null || fail "blip_vqa on BLIP-2 Flan-T5"
    python3 -c "import json; r=json.load(open('$work/out')); assert isinstance(r['answer'], str)" || fail "bad JSON"
    printf 'what is this?\nwhy?\n' | "$bin/blip_chat" "$fixtures/blip2_t5" "${images[0]}" --tokenizer "$t5" \
      --max-new-tokens 4 > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_chat on BLIP-2 Flan-T5"; }
    [ "$(wc -l < "$work/out")" -eq 2 ] || fail "blip_chat on BLIP-2 Flan-T5: expected 2 answer lines"
    "$bin/blip_match" "$fixtures/blip2_itm" --image "${images[0]}" --image "${images[1]}" --text "a dog" \
      --text "a rocket" --tokenizer "$tokenizer" --json > "$work/out" 2>/dev/null || fail "blip_match on BLIP-2"
    [ "$(wc -l < "$work/out")" -eq 4 ] || fail "blip_match on BLIP-2: expected 4 rows"
    ;;
  run_case)
    "$bin/blip_run_case" "$fixtures/blip_caption" "$work/out.safetensors" 2>/dev/null || fail "blip_run_case failed"
    [ -s "$work/out.safetensors" ] || fail "no output file"
    # --accuracy: one table row per setting; f32 is HF's own numbers (every position, every sequence).
    "$bin/blip_run_case" --accuracy "$fixtures/blip_caption" "$fixtures/blip2_opt" --settings f32,int8:int8 \
      > "$work/out" 2>/dev/null || fail "blip_run_case --accuracy failed"
    [ "$(grep -c '^| ' "$work/out")" -eq 3 ] || fail "blip_run_case --accuracy: expected a header and 2 rows"
    grep -q '^| f32 | [0-9.e+-]* | [0-9.e+-]* | 100.00% of [1-9][0-9]* | 0 | \([0-9]*\) of \1 |' "$work/out" \
      || { cat "$work/out"; fail "blip_run_case --accuracy: f32 differs from HF"; }
    grep -q '^| int8 x int8 activations | ' "$work/out" || fail "blip_run_case --accuracy: no int8 x int8 row"
    ;;
  preprocess)
    need "$fixtures/preprocess/test_image.png" "$fixtures/preprocess/pv224.safetensors"
    "$bin/blip_run_case" --preprocess "$fixtures/preprocess/test_image.png" --size 224 "$work/pv.safetensors" \
      || fail "--preprocess failed"
    # PNG input: identical to HF's pixel_values, byte for byte in the tensor data.
    python3 - "$work/pv.safetensors" "$fixtures/preprocess/pv224.safetensors" <<'PY' || fail "pixel_values differ from HF"
import json, struct, sys
def tensor(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    info = json.loads(data[8:8 + n])["pixel_values"]
    begin, end = info["data_offsets"]
    return info["shape"], data[8 + n + begin: 8 + n + end]
assert tensor(sys.argv[1]) == tensor(sys.argv[2])
PY
    ;;
  tokenize)
    printf '%s\n' '{"text": "A photo of two cats."}' '{"text": ""}' | "$bin/blip_tokenize" "$tokenizer" > "$work/out" \
      || fail "blip_tokenize failed"
    python3 - "$work/out" <<'PY' || fail "unexpected tokenization"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert rows[0]["ids"] == [101, 1037, 6302, 1997, 2048, 8870, 1012, 102], rows[0]
assert rows[0]["decoded"] == "a photo of two cats.", rows[0]
assert rows[1]["ids"] == [101, 102], rows[1]
PY
    # BLIP-2 OPT (byte-level BPE) folders go through the same load_tokenizer.
    opt_tokenizer="$assets/tokenizers/blip2-opt-2.7b"
    if [ -e "$opt_tokenizer" ]; then
      printf '%s\n' '{"text": "a photo of"}' '{"text": ""}' | "$bin/blip_tokenize" "$opt_tokenizer" > "$work/out" \
        || fail "blip_tokenize failed on the OPT folder"
      python3 - "$work/out" <<'PY' || fail "unexpected OPT tokenization"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert rows[0]["ids"] == [2, 102, 1345, 9], rows[0]
assert rows[0]["tokens"] == ["</s>", "a", "\u0120photo", "\u0120of"], rows[0]
assert rows[0]["decoded"] == "a photo of", rows[0]
assert rows[1]["ids"] == [2] and rows[1]["decoded"] == "", rows[1]
PY
    fi
    # BLIP-2 Flan-T5 (SentencePiece Unigram) folders too, from tokenizer.json and from spiece.model alone.
    t5_tokenizer="$assets/tokenizers/blip2-flan-t5-xl"
    if [ -e "$t5_tokenizer" ]; then
      mkdir -p "$work/spiece_only" && cp "$t5_tokenizer/spiece.model" "$work/spiece_only/"
      for folder in "$t5_tokenizer" "$work/spiece_only"; do
        printf '%s\n' '{"text": "a photo of"}' '{"text": "trailing space "}' | "$bin/blip_tokenize" "$folder" > "$work/out" \
          || fail "blip_tokenize failed on the T5 folder $folder"
        python3 - "$work/out" <<'PY' || fail "unexpected T5 tokenization ($folder)"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert rows[0]["ids"] == [3, 9, 1202, 13, 1], rows[0]
assert rows[0]["tokens"] == ["\u2581", "a", "\u2581photo", "\u2581of", "</s>"], rows[0]
assert rows[0]["decoded"] == "a photo of", rows[0]
assert rows[1]["ids"] == [5032, 53, 628, 3, 1], rows[1]
PY
      done
    fi
    ;;
  bad_input)
    # Clear errors naming the file, never a crash.
    printf 'not an image' > "$work/broken.jpg"
    "$bin/blip_caption" "$fixtures/blip_caption" "$work/broken.jpg" --tokenizer "$tokenizer" > /dev/null 2> "$work/err"
    [ $? -eq 1 ] || fail "broken image: expected exit code 1"
    grep -qF "broken.jpg" "$work/err" || fail "error does not name the image: $(cat "$work/err")"
    "$bin/blip_caption" "$work/no-such-model" "${images[0]}" > /dev/null 2> "$work/err"
    [ $? -eq 1 ] || fail "missing model: expected exit code 1"
    grep -qF "no-such-model" "$work/err" || fail "error does not name the model folder: $(cat "$work/err")"
    "$bin/blip_caption" --bogus > /dev/null 2>&1
    [ $? -ne 0 ] || fail "unknown option accepted"
    "$bin/blip_caption" --help | grep -q "usage" || fail "--help has no usage"
    "$bin/blip_vqa" "$fixtures/blip_vqa" "${images[0]}" "" --tokenizer "$tokenizer" > /dev/null 2> "$work/err"
    [ $? -eq 1 ] || fail "empty question: expected exit code 1"
    grep -q "question" "$work/err" || fail "empty question error unclear: $(cat "$work/err")"
    ;;
  *) fail "unknown check $check" ;;
esac
echo "PASS: $check"
