#!/usr/bin/env bash
# c_caption (the C interface's example) on the fixture captioning model: one caption line and exit status 0;
# then a model folder that is not there: exit status 1 and the library's message naming the folder.
#   check_c_caption.sh C_CAPTION FIXTURES_DIR ASSETS_DIR
set -u
program=$1 fixtures=$2 assets=$3
model="$fixtures/blip_caption" tokenizer="$assets/tokenizers/blip-image-captioning-base"
image="$assets/images/skimage_coffee.png"
for needed in "$model/model.safetensors" "$tokenizer" "$image"; do
  if [ ! -e "$needed" ]; then
    echo "SKIPPED: $needed is absent (set BLIP_FIXTURES_DIR / BLIP_ASSETS_DIR)"
    exit 77
  fi
done
output=$("$program" "$model" "$image" "$tokenizer") || { echo "FAIL: c_caption exited with $?"; exit 1; }
lines=$(printf '%s\n' "$output" | wc -l)
if [ -z "$output" ] || [ "$lines" -ne 1 ]; then
  echo "FAIL: expected one caption line, got: '$output'"
  exit 1
fi
echo "caption: $output"
missing="$fixtures/no_such_model_folder"
errors=$("$program" "$missing" "$image" "$tokenizer" 2>&1 >/dev/null)
status=$?
if [ "$status" -ne 1 ] || [[ "$errors" != "c_caption: "*"no_such_model_folder"* ]]; then
  echo "FAIL: a missing model folder gave exit status $status and '$errors'"
  exit 1
fi
echo "missing folder: $errors"
