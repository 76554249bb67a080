#!/usr/bin/env bash
# usage: check_options.sh CHECK BIN_DIR BLIP_WEIGHTS VERSION FIXTURES_DIR ASSETS_DIR
# The command line every program shares (examples/support): --version, --name=value beside
# --name value, the sampling seed and the warnings for sampling flags that do nothing, and the
# exit statuses (0 success, 1 runtime error, 2 usage error) for the same mistakes in every program.
# BLIP_WEIGHTS is blip_weights' path ("" when not built), VERSION CMake's project version.
# Exit 0 = pass, 77 = skipped (inputs absent), anything else = failure.
set -u
check=$1 bin=$2 weights=$3 version=$4 fixtures=$5 assets=$6
tokenizer="$assets/tokenizers/blip-image-captioning-base"
image="$assets/images/skimage_coffee.png"
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
programs=(blip_caption blip_vqa blip_chat blip_match blip_tokenize blip_eval blip_run_case blip_embed blip_search)
# blip_server is built only where cpp-httplib is installed.
[ -x "$bin/blip_server" ] && programs+=(blip_server)

case $check in
  version)  # every program: "<program> <version>" first, exit 0; --help says so
    for program in "${programs[@]}"; do
      expect 0 "$bin/$program" --version
      [ "$(head -n 1 "$work/out")" = "$program $version" ] || fail "$program --version printed: $(head -n 3 "$work/out")"
      grep -q "^kernels: \(avx512-bf16\|avx512\|avx2\|portable\) (picked at run time" "$work/out" || fail "$program --version: no kernel line"
      [ ! -s "$work/err" ] || fail "$program --version wrote to stderr: $(cat "$work/err")"
      expect 0 "$bin/$program" --help
      grep -qF -- "--version prints" "$work/out" || fail "$program --help does not mention --version"
      grep -qF -- "--name=VALUE" "$work/out" || fail "$program --help does not mention --name=VALUE"
      expect 2 "$bin/$program" --version=2
      has "option --version takes no value"
    done
    ;;
  equals)  # --name=value and --name value give the same run, in every program that takes options
    need "$fixtures/blip_caption" "$tokenizer" "$image"
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --beams 2 --max-new-tokens 5 \
      --prompt "a picture of"
    mv "$work/out" "$work/spaced"
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer="$tokenizer" --beams=2 --max-new-tokens=5 \
      "--prompt=a picture of"
    cmp -s "$work/spaced" "$work/out" || fail "blip_caption: '$(cat "$work/spaced")' spaced, '$(cat "$work/out")' joined"
    grep -qF ": a picture of" "$work/out" || fail "the --prompt=TEXT value was not used: $(cat "$work/out")"
    expect 0 "$bin/blip_run_case" --preprocess "$image" --size 32 "$work/spaced.safetensors"
    expect 0 "$bin/blip_run_case" "--preprocess=$image" --size=32 "$work/joined.safetensors"
    cmp -s "$work/spaced.safetensors" "$work/joined.safetensors" || fail "blip_run_case: different pixel files"
    data="$(dirname "$0")/../data/evaluation/cli"
    expect 0 "$bin/blip_eval" caption --annotations "$data/captions_annotations.json" --results "$data/captions_results.json"
    mv "$work/out" "$work/spaced"
    expect 0 "$bin/blip_eval" caption "--annotations=$data/captions_annotations.json" "--results=$data/captions_results.json"
    cmp -s "$work/spaced" "$work/out" || fail "blip_eval: different scores"
    need "$fixtures/blip_itm"
    expect 0 "$bin/blip_match" "$fixtures/blip_itm" "--image=$image" "--text=a cup of coffee" --text "a dog" \
      "--tokenizer=$tokenizer" --json
    [ "$(wc -l < "$work/out")" -eq 2 ] || fail "blip_match: expected 2 pairs, got $(cat "$work/out")"
    ;;
  sampling)  # a random seed by default, printed; --seed repeats the run; sampling flags without --sample warn
    need "$fixtures/blip_caption" "$tokenizer" "$image"
    run=("$bin/blip_caption" "$fixtures/blip_caption" "$image" "$image" --tokenizer "$tokenizer" --max-new-tokens 12)
    expect 0 "${run[@]}" --sample --top-k=0
    message=$(grep -F "[blip] sampling with seed " "$work/err") || fail "no seed message: $(head -c 600 "$work/err")"
    seed=$(sed -E 's/.*sampling with seed ([0-9]+) .*/\1/' <<< "$message")
    [ "$message" = "[blip] sampling with seed $seed (--seed $seed repeats this run)" ] || fail "seed message: $message"
    lacks "warning"
    mv "$work/out" "$work/first"
    expect 0 "${run[@]}" --sample --top-k=0 --seed "$seed"
    cmp -s "$work/first" "$work/out" || fail "--seed $seed did not repeat the run: '$(cat "$work/first")' then '$(cat "$work/out")'"
    has "[blip] sampling with seed $seed (--seed $seed repeats this run)"
    # Another run, another seed (two random 32-bit seeds agree once in 2^32 runs).
    expect 0 "${run[@]}" --sample --top-k=0
    lacks "sampling with seed $seed "
    has "[blip] sampling with seed "
    # Sampling flags in a run that does not sample: HF's warning, in flags; greedy output unchanged.
    expect 0 "${run[@]}"
    mv "$work/out" "$work/greedy"
    lacks "sampling with seed"
    lacks "warning"
    expect 0 "${run[@]}" --temperature 0.7 --top-k=5 --top-p 0.9 --typical-p=0.5 --seed 3
    cmp -s "$work/greedy" "$work/out" || fail "sampling flags changed a greedy run"
    has "[blip] warning: sampling is off (no --sample, and the model's text_config has do_sample false). However, --temperature is set to 0.7 -- this flag is only used when sampling. Give --sample or leave out --temperature."
    for flag in "--top-k is set to 5" "--top-p is set to 0.9" "--typical-p is set to 0.5" "--seed is set to 3"; do
      has "However, $flag -- this flag is only used when sampling."
    done
    lacks "sampling with seed"
    expect 0 "${run[@]}" --sample --temperature 0.7
    lacks "warning"
    ;;
  exit_status)  # the same mistakes get the same status in every program: usage 2, runtime 1
    missing="$work/missing"
    for program in "${programs[@]}"; do
      expect 2 "$bin/$program" --bogus
      has "unknown option --bogus"
      expect 2 "$bin/$program" --bogus=1
      has "unknown option --bogus"
      has "(see --help)"
    done
    # A value missing at the end, a bad number, a switch given a value: each program's own options.
    # The model folder does not exist: flag values are checked before it is read.
    for program in blip_caption blip_vqa blip_chat; do
      arguments=("$missing" "$work/photo.png")
      [ "$program" = blip_vqa ] && arguments+=("what is it?")
      expect 2 "$bin/$program" "${arguments[@]}" --beams
      has "option --beams needs a value"
      expect 2 "$bin/$program" "${arguments[@]}" --beams=x
      has "option --beams expects an integer in [1, 64], got 'x'"
      expect 2 "$bin/$program" "${arguments[@]}" --max-new-tokens 1e3
      has "option --max-new-tokens expects an integer"
      expect 2 "$bin/$program" "${arguments[@]}" --temperature=-1
      has "option --temperature expects a finite number > 0, got '-1'"
      expect 2 "$bin/$program" "${arguments[@]}" --json=1
      has "option --json takes no value"
      expect 2 "$bin/$program" "${arguments[@]}" --threads=many
      has "option --threads expects an integer"
    done
    expect 2 "$bin/blip_match" "$missing" --image
    has "option --image needs a value"
    expect 2 "$bin/blip_match" "$missing" --image=x --text=y --threads=-1
    has "option --threads expects an integer"
    expect 2 "$bin/blip_eval" caption --results
    has "option --results needs a value"
    expect 2 "$bin/blip_eval" caption --results=x
    has "option --annotations is required"
    expect 2 "$bin/blip_run_case" --preprocess=x --size=big "$work/out.safetensors"
    has "option --size expects an integer in [1, 8192], got 'big'"
    expect 2 "$bin/blip_run_case" --preprocess=x --size
    has "option --size needs a value"
    expect 2 "$bin/blip_run_case" --accuracy "$missing" --settings=f32:int8
    has "option --settings: 'f32:int8' is not one of"
    expect 2 "$bin/blip_run_case" --accuracy "$missing" --threads=0
    has "option --threads expects an integer in [1, 1024], got '0'"
    expect 2 "$bin/blip_run_case" --accuracy
    has "usage: blip_run_case"
    expect 2 "$bin/blip_tokenize" one two
    # Wrong arguments (no option at fault): the usage text on stderr, status 2.
    for program in "${programs[@]}"; do
      expect 2 "$bin/$program"
      has "usage: $program"
    done
    # Runtime errors: a missing folder or file, named; status 1.
    for program in blip_caption blip_vqa blip_chat; do
      arguments=("$missing" "$work/photo.png")
      [ "$program" = blip_vqa ] && arguments+=("what is it?")
      expect 1 "$bin/$program" "${arguments[@]}"
      has "$missing"
    done
    expect 1 "$bin/blip_match" "$missing" --image "$work/photo.png" --text a
    has "photo.png"
    expect 1 "$bin/blip_tokenize" "$missing" < /dev/null
    has "$missing"
    expect 1 "$bin/blip_eval" caption --annotations "$missing.json" --results "$missing.json"
    has "missing.json"
    expect 1 "$bin/blip_run_case" "$missing" "$work/out.safetensors"
    has "$missing"
    expect 1 "$bin/blip_run_case" --accuracy "$missing"
    has "$missing"
    if [ -n "$weights" ]; then
      expect 2 "$weights" list --bogus=1
      expect 2 "$weights" shard a b --shards=x
      expect 2 "$weights" shard a b --shards
      expect 1 "$weights" list "$missing.safetensors"
      has "missing.safetensors"
    fi
    ;;
  *) fail "unknown check $check" ;;
esac
echo "PASS: $check"
