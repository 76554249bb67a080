#!/usr/bin/env bash
# usage: check_eval.sh CHECK BLIP_EVAL DATA_DIR
# blip_eval against the scores the reference code gave for the files in DATA_DIR
# (tests/data/evaluation/cli). Exit 0 = pass, anything else = failure.
set -u
check=$1 eval=$2 data=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# same_json OUT EXPECTED: equal keys, numbers equal to 1e-9 relative.
same_json() {
  python3 - "$1" "$2" <<'PY'
import json, math, sys
out_text = open(sys.argv[1]).read()
assert out_text.count("\n") == 1, "expected exactly one line of output: " + out_text
out, expected = json.loads(out_text), json.load(open(sys.argv[2]))
def same(a, b):
    if isinstance(b, dict):
        return isinstance(a, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
assert same(out, expected), (out, expected)
PY
}

# expect_error CODE TEXT ARGS...: blip_eval exits with CODE and its stderr contains TEXT.
expect_error() {
  local code=$1 text=$2
  shift 2
  "$eval" "$@" > "$work/out" 2> "$work/err"
  local status=$?
  [ $status -eq "$code" ] || fail "blip_eval $*: expected exit code $code, got $status"
  grep -qF -- "$text" "$work/err" || fail "blip_eval $*: error does not say '$text': $(cat "$work/err")"
}

case $check in
  caption)
    "$eval" caption --annotations "$data/captions_annotations.json" --results "$data/captions_results.json" \
      > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_eval caption exited with $?"; }
    same_json "$work/out" "$data/captions_expected.json" || fail "caption scores differ from pycocoevalcap's"
    ;;
  vqa)
    "$eval" vqa --questions "$data/vqa_questions.json" --annotations "$data/vqa_annotations.json" \
      --results "$data/vqa_results.json" > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_eval vqa exited with $?"; }
    same_json "$work/out" "$data/vqa_expected.json" || fail "VQA accuracy differs from vqaEval.py's"
    ;;
  bad_input)
    "$eval" --help | grep -q "usage" || fail "--help has no usage"
    expect_error 2 "usage" frobnicate --annotations a --results b
    expect_error 2 "option --annotations is required" caption --results "$data/captions_results.json"
    expect_error 2 "option --questions is required" vqa --annotations "$data/vqa_annotations.json" --results "$data/vqa_results.json"
    expect_error 1 "no-such.json (no such file)" caption --annotations "$work/no-such.json" --results "$data/captions_results.json"
    printf '{"images": [' > "$work/truncated.json"
    expect_error 1 "truncated.json: invalid JSON" caption --annotations "$work/truncated.json" --results "$data/captions_results.json"
    expect_error 1 "vqa_annotations.json: expected a COCO caption annotation file" \
      caption --annotations "$data/vqa_annotations.json" --results "$data/captions_results.json"
    printf '[{"image_id": 123456, "caption": "a dog"}]' > "$work/unknown.json"
    expect_error 1 "unknown.json: image_id 123456 is not among the \"images\" of" \
      caption --annotations "$data/captions_annotations.json" --results "$work/unknown.json"
    printf '[{"question_id": 5000, "answer": "yes"}]' > "$work/partial.json"
    expect_error 1 "partial.json: no answer for" \
      vqa --questions "$data/vqa_questions.json" --annotations "$data/vqa_annotations.json" --results "$work/partial.json"
    ;;
  *) fail "unknown check $check" ;;
esac
echo "PASS: $check"
