#!/usr/bin/env bash
# usage: check_retrieval.sh CHECK BIN_DIR FIXTURES_DIR ASSETS_DIR
# The retrieval programs on the tiny BLIP and BLIP-2 retrieval fixtures and the real photos:
#   index_blip, index_blip2  blip_embed -> blip_search gives blip_match's itc_cos for every pair
#   family                   an index searched with the other family's model is refused, naming both
#   eval                     blip_eval retrieval's Recall@K equals itm_eval recomputed in Python from
#                            blip_match's ITC scores; --rerank-k runs and keeps the shape
#   match_threshold          blip_match --threshold (exit 3) and --pairs (JSON lines, file order)
#   bad_input                usage errors (2) and broken files (1), each message checked
# Exit 0 = pass, 77 = skipped (inputs absent), anything else = failure.
set -u
check=$1 bin=$2 fixtures=$3 assets=$4
tokenizer="$assets/tokenizers/blip-image-captioning-base"
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

need "$fixtures/blip_itm" "$fixtures/blip2_itm" "$assets/images" "$tokenizer"
images=("$assets/images/skimage_coffee.png" "$assets/images/skimage_rocket.jpg"
        "$assets/images/blip_demo_beach_woman_dog_409x273.png" "$assets/images/coco_val2017_000000039769.png")
need "${images[@]}"
texts=("a cup of coffee" "a rocket on its launch pad" "a woman and her dog on a beach" "two cats on a pink blanket"
       "coffee" "a dog")
printf '%s\n' "${texts[@]}" > "$work/texts.txt"
printf '%s\n' "${images[@]}" > "$work/images.txt"

# match_table MODEL OUT: blip_match --json over every image and text.
match_table() {
  local args=()
  for image in "${images[@]}"; do args+=(--image "$image"); done
  for text in "${texts[@]}"; do args+=(--text "$text"); done
  "$bin/blip_match" "$1" "${args[@]}" --tokenizer "$tokenizer" --json > "$2" 2> "$work/match_err" \
    || { cat "$work/match_err"; fail "blip_match on $1"; }
}

# index_check FIXTURE: embed, then every text and image query gives blip_match's ITC scores, best first.
index_check() {
  local model="$fixtures/$1"
  "$bin/blip_embed" "$model" --images "$work/images.txt" --texts "$work/texts.txt" --out "$work/index.safetensors" \
    --batch 3 --tokenizer "$tokenizer" 2> "$work/err" || { cat "$work/err"; fail "blip_embed on $1"; }
  grep -q "embedded 4 images and 6 texts" "$work/err" || fail "blip_embed: no summary on stderr: $(cat "$work/err")"
  match_table "$model" "$work/match.jsonl"
  : > "$work/search.jsonl"
  for text in "${texts[@]}"; do
    "$bin/blip_search" "$model" "$work/index.safetensors" --text "$text" --top-k 3 --json --tokenizer "$tokenizer" \
      >> "$work/search.jsonl" 2> "$work/err" || { cat "$work/err"; fail "blip_search --text '$text' on $1"; }
  done
  for image in "${images[@]}"; do
    "$bin/blip_search" "$model" "$work/index.safetensors" --image "$image" --json --tokenizer "$tokenizer" \
      >> "$work/search.jsonl" 2> "$work/err" || { cat "$work/err"; fail "blip_search --image on $1"; }
  done
  python3 - "$work/match.jsonl" "$work/search.jsonl" <<'PY' || fail "$1: blip_search scores differ from blip_match's"
import json, sys
itc = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    itc[(row["image"], row["text"])] = row["itc_similarity"]
searches = [json.loads(line) for line in open(sys.argv[2])]
assert len(searches) == 10, len(searches)
for search in searches:
    query, results = search["query"], search["results"]
    if "text" in query:
        assert len(results) == 3, search                   # --top-k 3 of 4 images
        pairs = [(r["image"], query["text"]) for r in results]
    else:
        assert len(results) == 6, search                   # default 10, the index holds 6 texts
        pairs = [(query["image"], r["text"]) for r in results]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True), search
    assert [r["rank"] for r in results] == list(range(1, len(results) + 1)), search
    for pair, score in zip(pairs, scores):
        assert abs(itc[pair] - score) <= 2e-6, (pair, itc[pair], score)   # both printed to 6 decimals
    if "text" in query:  # the best 3 are the 3 best of the full table
        best = sorted((value for (image, text), value in itc.items() if text == query["text"]), reverse=True)[:3]
        assert all(abs(a - b) <= 2e-6 for a, b in zip(best, scores)), (best, scores)
PY
  # The plain table: rank, score, item.
  "$bin/blip_search" "$model" "$work/index.safetensors" --text "${texts[0]}" --top-k 2 --tokenizer "$tokenizer" \
    > "$work/plain" 2>/dev/null || fail "blip_search without --json"
  [ "$(wc -l < "$work/plain")" -eq 2 ] || fail "blip_search --top-k 2: expected 2 lines, got $(cat "$work/plain")"
  grep -qE '^ +1 +-?[0-9]+\.[0-9]{6} +/' "$work/plain" || fail "blip_search: unexpected table: $(cat "$work/plain")"
}

# expect_error CODE TEXT PROGRAM ARGS...: exit status CODE and TEXT in stderr.
expect_error() {
  local code=$1 text=$2
  shift 2
  "$@" > "$work/out" 2> "$work/err"
  local status=$?
  [ $status -eq "$code" ] || fail "$*: expected exit status $code, got $status ($(cat "$work/err"))"
  grep -qF -- "$text" "$work/err" || fail "$*: stderr does not say '$text': $(cat "$work/err")"
}

case $check in
  index_blip) index_check blip_itm ;;
  index_blip2) index_check blip2_itm ;;
  family)
    "$bin/blip_embed" "$fixtures/blip2_itm" --images "$work/images.txt" --out "$work/blip2.safetensors" \
      --tokenizer "$tokenizer" 2>/dev/null || fail "blip_embed on blip2_itm"
    expect_error 1 "blip2.safetensors was made by a BLIP-2 model (4 query embeddings of 24 per image) but" \
      "$bin/blip_search" "$fixtures/blip_itm" "$work/blip2.safetensors" --text "a dog" --tokenizer "$tokenizer"
    grep -qF "but $fixtures/blip_itm is a BLIP model (one embedding of" "$work/err" || fail "message names the model: $(cat "$work/err")"
    expect_error 1 "holds no texts to rank for an image (made with --images only)" \
      "$bin/blip_search" "$fixtures/blip2_itm" "$work/blip2.safetensors" --image "${images[0]}" --tokenizer "$tokenizer"
    ;;
  eval)
    # Two captions per image (texts i and i+4 for image i, i < 2; image 2 and 3 one each plus one more).
    python3 - "$work/captions.json" "${images[@]}" <<'PY'
import json, os, sys
out, paths = sys.argv[1], sys.argv[2:]
captions = [["a cup of coffee", "coffee"], ["a rocket on its launch pad"], ["a woman and her dog on a beach", "a dog"],
            ["two cats on a pink blanket"]]
json.dump({"images": [{"id": i + 1, "file_name": os.path.basename(p)} for i, p in enumerate(paths)],
           "annotations": [{"image_id": i + 1, "caption": c} for i, cs in enumerate(captions) for c in cs]},
          open(out, "w"))
PY
    for model in blip_itm blip2_itm; do
      "$bin/blip_eval" retrieval "$fixtures/$model" --images "$assets/images" --captions "$work/captions.json" \
        --tokenizer "$tokenizer" > "$work/recall.json" 2> "$work/err" || { cat "$work/err"; fail "blip_eval retrieval on $model"; }
      match_table "$fixtures/$model" "$work/match.jsonl"
      python3 - "$work/match.jsonl" "$work/recall.json" "${images[@]}" <<'PY' || fail "$model: Recall@K differs from itm_eval on blip_match's scores"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
recall = json.loads(open(sys.argv[2]).read())
paths = sys.argv[3:]
# The texts in blip_eval's order: grouped by image, annotation order within.
texts = ["a cup of coffee", "coffee", "a rocket on its launch pad", "a woman and her dog on a beach", "a dog",
         "two cats on a pink blanket"]
txt2img = [0, 0, 1, 2, 2, 3]
img2txt = [[t for t in range(6) if txt2img[t] == i] for i in range(4)]
itc = {(r["image"], r["text"]): r["itc_similarity"] for r in rows}
S = [[itc[(p, t)] for t in texts] for p in paths]
def order(scores):  # itm_eval's argsort(score)[::-1], ties to the lower index (blipcpp's documented rule)
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))
ranks_i = [min(order(S[i]).index(t) for t in img2txt[i]) for i in range(4)]
ranks_t = [order([S[i][t] for i in range(4)]).index(txt2img[t]) for t in range(6)]
def pct(ranks, k): return 100.0 * sum(r < k for r in ranks) / len(ranks)
tr = [pct(ranks_i, k) for k in (1, 5, 10)]
ir = [pct(ranks_t, k) for k in (1, 5, 10)]
expected = {"txt_r1": tr[0], "txt_r5": tr[1], "txt_r10": tr[2], "txt_r_mean": sum(tr) / 3,
            "img_r1": ir[0], "img_r5": ir[1], "img_r10": ir[2], "img_r_mean": sum(ir) / 3}
expected["r_mean"] = (expected["txt_r_mean"] + expected["img_r_mean"]) / 2
assert list(recall.keys()) == list(expected.keys()), recall
for key in expected:
    assert abs(recall[key] - expected[key]) < 1e-9, (key, recall[key], expected[key], ranks_i, ranks_t)
PY
      "$bin/blip_eval" retrieval "$fixtures/$model" --images "$assets/images" --captions "$work/captions.json" \
        --rerank-k 2 --tokenizer "$tokenizer" > "$work/reranked.json" 2> "$work/err" \
        || { cat "$work/err"; fail "blip_eval retrieval --rerank-k on $model"; }
      grep -q "re-ranked top 2" "$work/err" || fail "no re-ranking note on stderr"
      python3 -c "
import json; r = json.load(open('$work/reranked.json'))
assert all(0 <= r[k] <= 100 for k in r), r
assert r['txt_r10'] == 100 and r['img_r5'] == 100, r   # 6 texts, 4 images: every right answer within 10 / 5
assert all(abs(r[k] * 4 / 100 - round(r[k] * 4 / 100)) < 1e-9 for k in ('txt_r1', 'txt_r5')), r  # of 4 image queries
assert all(abs(r[k] * 6 / 100 - round(r[k] * 6 / 100)) < 1e-9 for k in ('img_r1', 'img_r5')), r  # of 6 caption queries
assert abs(r['r_mean'] - (r['txt_r_mean'] + r['img_r_mean']) / 2) < 1e-9, r
" || fail "$model: bad re-ranked recall"
    done
    ;;
  match_threshold)
    expect_error 3 "6 of 6 pairs below ITM probability 1" \
      "$bin/blip_match" "$fixtures/blip_itm" --image "${images[0]}" --text "a" --text "b" --text "c" \
      --image "${images[1]}" --threshold 1 --json --tokenizer "$tokenizer"
    [ "$(grep -c '"flagged": true' "$work/out")" -eq 6 ] || fail "--threshold 1: expected 6 flagged rows: $(cat "$work/out")"
    "$bin/blip_match" "$fixtures/blip_itm" --image "${images[0]}" --text "a" --threshold 0 --tokenizer "$tokenizer" \
      > "$work/out" 2> "$work/err" || fail "--threshold 0 must flag nothing (exit 0)"
    grep -q "0 of 1 pairs below" "$work/err" || fail "no count on stderr: $(cat "$work/err")"
    ! grep -q FLAG "$work/out" || fail "--threshold 0 flagged a pair"
    # --pairs: the same scores as the full table, in the file's order.
    python3 - "$work/pairs.jsonl" "${images[@]}" <<'PY'
import json, sys
paths = sys.argv[2:]
with open(sys.argv[1], "w") as out:
    for image, text in [(paths[2], "a dog"), (paths[0], "coffee"), (paths[2], "a cup of coffee"), (paths[3], "a dog")]:
        out.write(json.dumps({"image": image, "text": text}) + "\n")
    out.write("\n")  # a blank line is skipped
PY
    "$bin/blip_match" "$fixtures/blip_itm" --pairs "$work/pairs.jsonl" --json --tokenizer "$tokenizer" \
      > "$work/pairs_out.jsonl" 2> "$work/err" || { cat "$work/err"; fail "blip_match --pairs"; }
    match_table "$fixtures/blip_itm" "$work/match.jsonl"
    python3 - "$work/pairs.jsonl" "$work/pairs_out.jsonl" "$work/match.jsonl" <<'PY' || fail "--pairs scores differ"
import json, sys
wanted = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
got = [json.loads(l) for l in open(sys.argv[2])]
table = {(r["image"], r["text"]): r for r in map(json.loads, open(sys.argv[3]))}
assert [(g["image"], g["text"]) for g in got] == [(w["image"], w["text"]) for w in wanted], got
for g in got:
    t = table[(g["image"], g["text"])]
    assert abs(g["itm_probability"] - t["itm_probability"]) <= 2e-5, (g, t)
    assert abs(g["itc_similarity"] - t["itc_similarity"]) <= 2e-5, (g, t)
    assert "flagged" not in g
PY
    printf '{"image": "%s"}\n' "${images[0]}" > "$work/bad_pairs.jsonl"
    expect_error 1 "bad_pairs.jsonl: line 1: expected {\"image\": PATH, \"text\": TEXT}" \
      "$bin/blip_match" "$fixtures/blip_itm" --pairs "$work/bad_pairs.jsonl" --tokenizer "$tokenizer"
    printf '{"image": "%s", "text": "x"}\n' "$work/missing.jpg" > "$work/bad_pairs.jsonl"
    expect_error 1 "bad_pairs.jsonl: line 1: cannot open $work/missing.jpg" \
      "$bin/blip_match" "$fixtures/blip_itm" --pairs "$work/bad_pairs.jsonl" --tokenizer "$tokenizer"
    expect_error 2 "--pairs lists the images and texts itself" \
      "$bin/blip_match" "$fixtures/blip_itm" --pairs "$work/pairs.jsonl" --text "a"
    expect_error 2 "option --threshold expects a number in [0, 1], got '2'" \
      "$bin/blip_match" "$fixtures/blip_itm" --image "${images[0]}" --text "a" --threshold 2
    ;;
  bad_input)
    expect_error 2 "usage: blip_embed" "$bin/blip_embed" "$fixtures/blip_itm" --images "$work/images.txt"
    expect_error 2 "usage: blip_search" "$bin/blip_search" "$fixtures/blip_itm" "$work/x" --text a --image "${images[0]}"
    expect_error 2 "option --top-k expects an integer" \
      "$bin/blip_search" "$fixtures/blip_itm" "$work/x" --text a --top-k 0
    expect_error 1 "x.safetensors: cannot open" "$bin/blip_search" "$fixtures/blip_itm" "$work/x.safetensors" --text a
    expect_error 1 "inputs.safetensors: not a blipcpp retrieval index (its __metadata__ format is \"pt\"" \
      "$bin/blip_search" "$fixtures/blip_itm" "$fixtures/blip_itm/inputs.safetensors" --text a
    python3 -c "
import json, struct, sys
header = json.dumps({'x': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]}}).encode()
sys.stdout.buffer.write(struct.pack('<Q', len(header)) + header + b'\\0' * 4)" > "$work/plain.safetensors"
    expect_error 1 "plain.safetensors: not a blipcpp retrieval index (no \"format\" in __metadata__" \
      "$bin/blip_search" "$fixtures/blip_itm" "$work/plain.safetensors" --text a
    mkdir "$work/empty"
    expect_error 1 "empty: no image files in the folder" \
      "$bin/blip_embed" "$fixtures/blip_itm" --images "$work/empty" --out "$work/i.safetensors"
    printf '%s\n%s\n' "${images[0]}" "$work/nope.png" > "$work/list.txt"
    expect_error 1 "list.txt: line 2: cannot open $work/nope.png" \
      "$bin/blip_embed" "$fixtures/blip_itm" --images "$work/list.txt" --out "$work/i.safetensors"
    expect_error 1 "skimage_coffee.png: an image file; --images takes a folder of images or a file listing" \
      "$bin/blip_embed" "$fixtures/blip_itm" --images "${images[0]}" --out "$work/i.safetensors"
    printf '\xff\xfe\n' > "$work/bad_texts.txt"
    expect_error 1 "bad_texts.txt: line 1 is not valid UTF-8" \
      "$bin/blip_embed" "$fixtures/blip_itm" --texts "$work/bad_texts.txt" --out "$work/i.safetensors"
    [ ! -e "$work/i.safetensors" ] || fail "an index was written after an error"
    expect_error 2 "option --captions is required" \
      "$bin/blip_eval" retrieval "$fixtures/blip_itm" --images "$assets/images"
    printf '{"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": []}' > "$work/nocap.json"
    expect_error 1 "nocap.json: image 1 (x.jpg) has no caption" \
      "$bin/blip_eval" retrieval "$fixtures/blip_itm" --images "$assets/images" --captions "$work/nocap.json"
    printf '{"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": [{"image_id": 1, "caption": "a"}]}' > "$work/nofile.json"
    expect_error 1 "nofile.json: image 1: cannot open $assets/images/x.jpg" \
      "$bin/blip_eval" retrieval "$fixtures/blip_itm" --images "$assets/images" --captions "$work/nofile.json"
    ;;
  *) fail "unknown check $check" ;;
esac
echo "PASS: $check"
