#!/usr/bin/env bash
# usage: check_reliability.sh CHECK BIN_DIR FIXTURES_DIR ASSETS_DIR
# The example programs on hostile and broken input, one check per hole of the
# hardening issue (docs/reliability.md lists the limits). Each fails on the
# programs before the fix: a crash (SIGSEGV, SIGABRT), a hang (bounded here by
# `timeout`), a replaced FIFO or link, an exit status or message that did not
# say what happened.
# Exit 0 = pass, 77 = skipped (inputs absent), anything else = failure.
set -u
check=$1 bin=$2 fixtures=$3 assets=$4
tokenizer="$assets/tokenizers/blip-image-captioning-base"
image="$assets/images/skimage_coffee.png"
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
expect_seconds=60  # every check here must answer quickly
model_copy() {  # a copy of the blip_caption fixture folder to edit
  mkdir -p "$work/$1" && cp "$fixtures/blip_caption/config.json" "$fixtures/blip_caption/model.safetensors" "$work/$1/"
}

need "$fixtures/blip_caption" "$tokenizer" "$image"

case $check in
  json_depth)  # 1: 100,000-deep JSON crashed three programs while a message was being written
    model_copy deep
    python3 - "$work/deep/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
text = json.dumps(config)[:-1] + ', "unknown_key": ' + "[" * 100000 + "]" * 100000 + "}"
open(sys.argv[1], "w").write(text)
PY
    expect 1 "$bin/blip_caption" "$work/deep" "$image" --tokenizer "$tokenizer"
    has "config.json: JSON nested deeper than 128 levels"
    mkdir "$work/tokenizer" && cp "$tokenizer"/* "$work/tokenizer/"
    python3 - "$work/tokenizer/tokenizer.json" <<'PY'
import json, sys
root = json.load(open(sys.argv[1]))
root["normalizer"]["deep"] = "MARK"
open(sys.argv[1], "w").write(json.dumps(root).replace('"MARK"', "[" * 100000 + "]" * 100000))
PY
    echo '{"text": "a"}' > "$work/line.jsonl"
    expect 1 "$bin/blip_tokenize" "$work/tokenizer" < "$work/line.jsonl"
    has "tokenizer.json: JSON nested deeper than 128 levels"
    python3 -c 'print("{\"text\": " + "[" * 80000 + "]" * 80000 + "}")' > "$work/deep.jsonl"
    expect 1 "$bin/blip_tokenize" "$tokenizer" < "$work/deep.jsonl"
    has "line 1: JSON nested deeper than 128 levels"
    ;;
  output_file)  # 2: blip_run_case replaced a FIFO, a symbolic link or a device node with a regular file
    run=("$bin/blip_run_case" --preprocess "$image" --size 32)
    expect 0 "${run[@]}" "$work/plain.safetensors"
    [ -f "$work/plain.safetensors" ] && [ ! -e "$work/plain.safetensors.partial" ] || fail "regular output not written"
    expect 0 "${run[@]}" "$work/plain.safetensors"  # replacing a regular file
    ln -s plain.safetensors "$work/link.safetensors"
    rm "$work/plain.safetensors"
    expect 0 "${run[@]}" "$work/link.safetensors"
    [ -L "$work/link.safetensors" ] || fail "the symbolic link was replaced by a regular file"
    cmp -s "$work/plain.safetensors" <("${run[@]}" /dev/stdout) || fail "the link's target does not hold the output"
    mkfifo "$work/fifo"
    cat "$work/fifo" > "$work/from_fifo" &
    reader=$!
    expect 0 "${run[@]}" "$work/fifo"
    wait $reader
    [ -p "$work/fifo" ] || fail "the FIFO was replaced by a regular file"
    cmp -s "$work/plain.safetensors" "$work/from_fifo" || fail "the FIFO's reader did not get the output"
    # Device nodes of our own with /dev/null's and /dev/full's numbers (root only): a regression must
    # not replace the system's.
    if mknod "$work/null" c 1 3 2> /dev/null && mknod "$work/full" c 1 7 2> /dev/null; then
      expect 0 "${run[@]}" "$work/null"
      [ -c "$work/null" ] || fail "the device node was replaced by a regular file"
      expect 1 "${run[@]}" "$work/full"
      has "full: write failed (No space left on device)"
      [ -c "$work/full" ] || fail "the full device node was replaced by a regular file"
    fi
    mkdir "$work/directory"
    expect 1 "${run[@]}" "$work/directory"
    has "is a directory"
    ;;
  tokenize_lines)  # 3: one huge line took gigabytes; std::bad_alloc aborted; a read error looked like the end
    python3 -c 'print("{\"text\": \"" + "a " * 1100000 + "\"}")' > "$work/huge.jsonl"
    expect 1 python3 - "$bin/blip_tokenize" "$tokenizer" "$work/huge.jsonl" <<'PY'
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:3], stdin=open(sys.argv[3]), stderr=subprocess.PIPE)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
sys.stderr.write(result.stderr.decode() + f"peak {peak} MB\n")
sys.exit(result.returncode if peak < 100 else 3)
PY
    has "line 1: longer than 1048576 bytes"
    expect 1 "$bin/blip_tokenize" "$tokenizer" < "$work"  # a directory: every read fails
    has "reading the input failed"
    python3 -c 'print("{\"text\": \"" + "a " * 400000 + "\"}")' > "$work/large.jsonl"
    expect 1 bash -c 'ulimit -v 60000; exec "$0" "$1" < "$2"' "$bin/blip_tokenize" "$tokenizer" "$work/large.jsonl"
    has "out of memory"
    ;;
  batch_memory)  # 4: blip_caption held every decoded image at full resolution until captioning
    python3 - "$work" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
for i in range(6):  # 4000 x 4000 RGB, 48 MB decoded each
    raw = (b"\x00" + bytes((40 * i, 100, 200)) * 4000) * 4000
    header = struct.pack(">IIBBBBB", 4000, 4000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")
    open(f"{sys.argv[1]}/big{i}.png", "wb").write(png)
PY
    expect 0 python3 - "$bin/blip_caption" "$fixtures/blip_caption" "$work"/big*.png --tokenizer "$tokenizer" <<'PY'
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
sys.stderr.write(f"peak {peak} MB\n")
assert result.returncode == 0 and result.stdout.count(b"\n") == 6, result
sys.exit(0 if peak < 200 else 3)  # one decoded image at a time: ~100 MB; all six held: ~330 MB
PY
    ;;
  generation_defaults)  # 7: --help said generation_config.json; HF takes the defaults from text_config
    for program in blip_caption blip_vqa blip_chat; do
      "$bin/$program" --help > "$work/help" || fail "$program --help"
      grep -q "text_config" "$work/help" || fail "$program --help does not say the defaults come from text_config"
      grep -q "NOT read" "$work/help" || fail "$program --help does not say generation_config.json is not read"
    done
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer"
    has "generation defaults from $fixtures/blip_caption/config.json text_config"
    has "generation_config.json is not read"
    opt="$assets/tokenizers/blip2-opt-2.7b"
    need "$fixtures/blip2_opt" "$opt"
    expect 0 "$bin/blip_caption" "$fixtures/blip2_opt" "$image" --tokenizer "$opt"
    has "max_new_tokens 30 (blipcpp's BLIP-2 default"
    ;;
  utf8)  # 8: --json failed after all the work on a non-UTF-8 argument, naming none
    bad_image="$work/photo_$(printf '\xff').png"
    cp "$image" "$bad_image"
    expect 2 "$bin/blip_caption" "$fixtures/blip_caption" "$image" "$bad_image" --tokenizer "$tokenizer" --json
    has "image path"
    has "is not valid UTF-8"
    lacks "[blip]"  # refused before loading
    [ ! -s "$work/out" ] || fail "records printed before the error"
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$bad_image" --tokenizer "$tokenizer"  # text output: fine
    need "$fixtures/blip_vqa"
    expect 0 "$bin/blip_vqa" "$fixtures/blip_vqa" "$image" "what $(printf '\xfe\xff')is it?" --tokenizer "$tokenizer" --json
    has "QUESTION is not valid UTF-8: 2 invalid bytes dropped"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['question'] == 'what is it?', r" "$work/out" \
      || fail "bad JSON: $(cat "$work/out")"
    expect 0 "$bin/blip_vqa" "$fixtures/blip_vqa" "$image" "what $(printf '\xff')is it?" --tokenizer "$tokenizer"
    has "invalid byte dropped"
    ;;
  threads)  # 11: OMP_NUM_THREADS=100000 crashed in libgomp
    OMP_NUM_THREADS=100000 expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer"
    has "using 1024"
    [ "$(wc -l < "$work/out")" -eq 1 ] || fail "no caption line"
    ;;
  special_files)  # 12: a FIFO hung, /dev/zero was read for 2 GB, a directory was "invalid JSON"
    mkfifo "$work/image.png"
    expect 1 "$bin/blip_caption" "$fixtures/blip_caption" "$work/image.png" --tokenizer "$tokenizer"
    has "image.png: is a FIFO (named pipe)"
    mkdir "$work/zero" && ln -s /dev/zero "$work/zero/config.json"
    expect 1 "$bin/blip_caption" "$work/zero" "$image" --tokenizer "$tokenizer"
    has "config.json: is a character device"
    mkdir -p "$work/directory/config.json"
    expect 1 "$bin/blip_caption" "$work/directory" "$image" --tokenizer "$tokenizer"
    has "config.json: is a directory"
    mkdir "$work/fifo_weights" && cp "$fixtures/blip_caption/config.json" "$work/fifo_weights/"
    mkfifo "$work/fifo_weights/model.safetensors"
    expect 1 "$bin/blip_caption" "$work/fifo_weights" "$image" --tokenizer "$tokenizer"
    has "model.safetensors: is a FIFO (named pipe)"
    ;;
  messages)  # 13: a 5 MB model_type was echoed in full
    model_copy huge_type
    python3 -c 'import json,sys; json.dump({"model_type": "x" * 5000000}, open(sys.argv[1], "w"))' "$work/huge_type/config.json"
    expect 1 "$bin/blip_caption" "$work/huge_type" "$image" --tokenizer "$tokenizer"
    has "(5000000 bytes)"
    [ "$(wc -c < "$work/err")" -lt 1000 ] || fail "message of $(wc -c < "$work/err") bytes"
    ;;
  options)  # 14: options checked after the load, named by library fields; exit statuses inconsistent
    for arguments in "--temperature 0" "--top-p 2" "--beams 0" "--threads 5000" "--repetition-penalty nan" \
                     "--precision int3"; do
      # shellcheck disable=SC2086
      expect 2 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" $arguments
      has "option ${arguments%% *}"
      lacks "[blip]"  # nothing was loaded
    done
    # A flag that does not fit the model's own defaults: named with the default, before the weights load.
    model_copy returns
    python3 - "$work/returns/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["text_config"].update(num_beams=2, num_return_sequences=2)
json.dump(config, open(sys.argv[1], "w"))
PY
    expect 0 "$bin/blip_caption" "$work/returns" "$image" --tokenizer "$tokenizer"
    expect 2 "$bin/blip_caption" "$work/returns" "$image" --tokenizer "$tokenizer" --beams 1
    has "text_config's num_return_sequences is 2 but greedy search"
    lacks "GenerationOptions::"
    lacks "[blip]"
    # --precision converts the Linear weights at load and says so.
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --precision int8
    has "[blip] Linear weights in int8"
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --precision int4
    has "[blip] Linear weights in int4"
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --precision bf16 \
      --activations bf16
    has "[blip] Linear weights in bf16, times bf16 activations"
    # bf16 activations apply to bf16 weights only: asked with int8 weights it is a usage error, before loading.
    expect 2 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --precision int8 \
      --activations bf16
    has "option --activations bf16 applies to bf16 weights"
    lacks "[blip]"
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --precision int8 \
      --activations int8
    has "[blip] Linear weights in int8, times int8 activations"
    expect 0 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --precision int4 \
      --activations int8
    has "[blip] Linear weights in int4, times int8 activations"
    expect 2 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --precision bf16 \
      --activations int8
    has "option --activations int8 applies to int8 or int4 weights"
    lacks "[blip]"
    expect 2 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --tokenizer "$tokenizer" --activations f8
    has "option --activations expects f32, bf16 or int8"
    expect 2 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --bogus
    has "unknown option --bogus"
    expect 2 "$bin/blip_caption" "$fixtures/blip_caption" "$image" --beams
    has "needs a value"
    expect 2 "$bin/blip_caption" "$fixtures/blip_caption"
    expect 2 "$bin/blip_tokenize"
    expect 2 "$bin/blip_run_case" --preprocess "$image" --size 0 "$work/out.safetensors"
    expect 1 "$bin/blip_caption" "$fixtures/blip_caption" "$work/missing.png" --tokenizer "$tokenizer"
    lacks "[blip]"  # the image path was checked before loading
    for program in blip_caption blip_vqa blip_chat blip_match blip_tokenize blip_run_case; do
      "$bin/$program" --help | grep -q "Exit status: 0 success; 1 runtime error" || fail "$program --help: no exit statuses"
    done
    ;;
  *) fail "unknown check $check" ;;
esac
echo "PASS: $check"
