#!/usr/bin/env bash
# usage: check_folder.sh CHECK BIN_DIR FIXTURES_DIR ASSETS_DIR
# blip_caption over folders, lists and many files, in batches (examples/support/image_inputs.hpp),
# and blip_vqa --questions, with the tiny fixture models on the real photos (random weights: the
# words are garbage, but they are the same words whichever way the images are grouped).
# Exit 0 = pass, 77 = skipped (inputs absent), anything else = failure.
set -u
check=$1 bin=$2 fixtures=$3 assets=$4
tokenizer="$assets/tokenizers/blip-image-captioning-base"
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

need "$fixtures/blip_caption" "$assets/images" "$tokenizer"
mapfile -t images < <(find "$assets/images" -type f \( -name '*.png' -o -name '*.jpg' \) | sort)
[ ${#images[@]} -eq 12 ] || fail "expected the 12 photos in $assets/images, found ${#images[@]}"
caption=("$bin/blip_caption" "$fixtures/blip_caption" --tokenizer "$tokenizer" --max-new-tokens 8)

case $check in
  folder)  # a folder of 12 photos, a corrupt file among them and a non-image file; a missing file after it
    mkdir "$work/photos"
    for image in "${images[@]}"; do ln -s "$image" "$work/photos/"; done
    printf 'not an image' > "$work/photos/m_corrupt.jpg"
    printf 'notes' > "$work/photos/README.txt"  # not an image name: skipped
    printf 'fork' > "$work/photos/._m_corrupt.jpg"  # hidden (a macOS resource fork): skipped
    "${caption[@]}" "$work/photos" "$work/missing.png" --batch 5 --json > "$work/out" 2> "$work/err"
    status=$?
    [ $status -eq 1 ] || fail "exit status $status, expected 1 (two inputs failed); stderr: $(head -c 600 "$work/err")"
    grep -qF "m_corrupt.jpg: not a supported image" "$work/err" || fail "stderr does not name the corrupt file"
    grep -qF "cannot open $work/missing.png (no such file)" "$work/err" || fail "stderr does not name the missing file"
    grep -qF "2 of 14 inputs failed" "$work/err" || fail "no summary on stderr"
    python3 - "$work/out" "$work/photos" "$work/missing.png" <<'PY' || fail "bad records: $(cat "$work/out")"
import json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
folder = sys.argv[2]
expected = [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name != "README.txt" and not name.startswith(".")] + [sys.argv[3]]
assert [r["image"] for r in rows] == expected, [r["image"] for r in rows]  # input order, names sorted
errors = [r for r in rows if "error" in r]
assert [os.path.basename(r["image"]) for r in errors] == ["m_corrupt.jpg", "missing.png"], errors
captions = [r for r in rows if "caption" in r]
assert len(captions) == 12 and all(isinstance(r["caption"], str) for r in captions), captions
PY
    # Plain text: the 12 caption lines, in the same order.
    "${caption[@]}" "$work/photos" "$work/missing.png" --batch 5 > "$work/text" 2> /dev/null
    [ $? -eq 1 ] || fail "text output: exit status not 1"
    [ "$(wc -l < "$work/text")" -eq 12 ] || fail "text output: expected 12 lines, got $(wc -l < "$work/text")"
    python3 - "$work/out" "$work/text" <<'PY' || fail "text lines differ from the JSON records"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
lines = open(sys.argv[2]).read().splitlines()
assert lines == [f'{r["image"]}: {r["caption"]}' for r in rows if "caption" in r], lines
PY
    # --recursive: a subfolder's images at its place in the name order; a list file from stdin.
    mkdir "$work/tree" "$work/tree/b_sub"
    ln -s "${images[0]}" "$work/tree/a.png" && ln -s "${images[1]}" "$work/tree/b_sub/x.png"
    ln -s "${images[2]}" "$work/tree/c.jpg"
    "${caption[@]}" "$work/tree" --json > "$work/flat" 2> /dev/null || fail "a folder with a subfolder"
    [ "$(wc -l < "$work/flat")" -eq 2 ] || fail "without --recursive the subfolder was read"
    "${caption[@]}" "$work/tree" --recursive --json > "$work/deep" 2> /dev/null || fail "--recursive"
    python3 -c "import json,sys; print('\n'.join(json.loads(l)['image'] for l in open(sys.argv[1])))" "$work/deep" \
      > "$work/order"
    printf '%s\n' "$work/tree/a.png" "$work/tree/b_sub/x.png" "$work/tree/c.jpg" | cmp -s - "$work/order" \
      || fail "--recursive order: $(cat "$work/order")"
    printf '%s\n\n%s\n' "$work/tree/a.png" "$work/tree/b_sub/x.png" | "${caption[@]}" --list - > "$work/listed" 2> /dev/null \
      || fail "--list -"
    [ "$(wc -l < "$work/listed")" -eq 2 ] || fail "--list -: expected 2 lines"
    # Nothing readable: the reasons, exit status 1, and no model loaded.
    mkfifo "$work/fifo.png"
    "${caption[@]}" "$work/missing.png" "$work/fifo.png" --json > "$work/out" 2> "$work/err"
    [ $? -eq 1 ] || fail "only failing inputs: exit status not 1"
    [ "$(grep -c '"error"' "$work/out")" -eq 2 ] || fail "only failing inputs: expected 2 error records"
    grep -qF "fifo.png: is a FIFO" "$work/err" || fail "the FIFO is not named: $(cat "$work/err")"
    ! grep -qF "[blip]" "$work/err" || fail "the model was loaded with nothing to caption"
    mkdir "$work/empty"
    "${caption[@]}" "$work/empty" > /dev/null 2> "$work/err"
    [ $? -eq 1 ] && grep -q "no images" "$work/err" || fail "an empty folder: $(cat "$work/err")"
    "${caption[@]}" "$work/photos" --json --csv > /dev/null 2>&1
    [ $? -eq 2 ] || fail "--json --csv: not a usage error"
    ;;
  memory)  # --batch 4 over 200 images: the peak of a 4-image run, give or take 10%
    mkdir "$work/many"
    for index in $(seq 0 199); do
      image=${images[$((index % 12))]}
      ln -s "$image" "$work/many/$(printf '%03d' "$index")_$(basename "$image")"
    done
    # The 4-image run holds the photo whose decoding takes the most memory (toys_progressive_420.jpg,
    # a 1500 x 1414 progressive JPEG: +14 MB while decoded), as any batch of the 200 may.
    find "$work/many" \( -name '008_*' -o -name '009_*' -o -name '010_*' -o -name '011_*' \) | sort > "$work/four.list"
    grep -q toys_progressive "$work/four.list" || fail "the 4-image run lacks the largest photo"
    peak() {  # peak RSS of blip_caption (kB) on a list of images; checks it captions them all
      python3 - "$1" "${caption[@]}" --batch 4 --list "$2" <<'PY'
import resource, subprocess, sys
result = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
lines = open(sys.argv[sys.argv.index("--list") + 1]).read().split()
assert result.returncode == 0 and result.stdout.count(b"\n") == len(lines), result.stderr.decode()[-600:]
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
    }
    four=$(peak four "$work/four.list") || fail "the 4-image run"
    find "$work/many" -type l | sort > "$work/all.list"
    all=$(peak all "$work/all.list") || fail "the 200-image run"
    echo "peak RSS: 4 images $four kB, 200 images $all kB (--batch 4)"
    [ "$all" -le $((four * 110 / 100)) ] || fail "200 images took $all kB, above 110% of the 4-image run's $four kB"
    ;;
  sidecar_csv)  # .txt files beside the images; CSV quoting of a path with a comma and a quote
    mkdir "$work/set"
    cp "${images[0]}" "$work/set/plain.png"
    cp "${images[1]}" "$work/set/with, \"quotes\".png"
    cp "${images[4]}" "$work/set/third.jpg"
    "${caption[@]}" "$work/set" --sidecar --json > "$work/out" 2> "$work/err" || fail "--sidecar: $(cat "$work/err")"
    python3 - "$work/out" <<'PY' || fail "sidecar contents"
import json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert len(rows) == 3, rows
for r in rows:
    sidecar = os.path.splitext(r["image"])[0] + ".txt"
    assert open(sidecar).read() == r["caption"] + "\n", (sidecar, r)
    assert oct(os.stat(sidecar).st_mode & 0o777) == "0o644", sidecar
PY
    [ -z "$(find "$work/set" -name '*.txt.*')" ] || fail "temporary files left: $(ls "$work/set")"
    # Again: every sidecar exists, so nothing is captioned (no model load) and all three fail.
    printf 'keep' > "$work/keep" && cp "$work/keep" "$work/set/plain.txt"
    "${caption[@]}" "$work/set" --sidecar > /dev/null 2> "$work/err"
    [ $? -eq 1 ] || fail "existing sidecars: exit status not 1"
    [ "$(grep -c "exists; pass --overwrite" "$work/err")" -eq 3 ] || fail "existing sidecars: $(cat "$work/err")"
    ! grep -qF "[blip]" "$work/err" || fail "the model was loaded with nothing to caption"
    cmp -s "$work/keep" "$work/set/plain.txt" || fail "an existing sidecar was changed without --overwrite"
    "${caption[@]}" "$work/set" --sidecar --overwrite > "$work/text" 2> "$work/err" || fail "--overwrite: $(cat "$work/err")"
    ! cmp -s "$work/keep" "$work/set/plain.txt" || fail "--overwrite did not replace the sidecar"
    grep -qF "$work/set/plain.png: $(cat "$work/set/plain.txt")" "$work/text" || fail "sidecar differs from stdout"
    # Two images with one sidecar name: the second is refused, even with --overwrite.
    cp "${images[2]}" "$work/set/third.png"
    "${caption[@]}" "$work/set/third.jpg" "$work/set/third.png" --sidecar --overwrite > /dev/null 2> "$work/err"
    [ $? -eq 1 ] && grep -qF "third.txt: already written for $work/set/third.jpg" "$work/err" \
      || fail "a shared sidecar name: $(cat "$work/err")"
    rm "$work/set/third.png" "$work/set"/*.txt
    # CSV: header, quoting, an error row; the same captions as --json.
    "${caption[@]}" "$work/set" "$work/missing.png" --csv > "$work/csv" 2> /dev/null
    [ $? -eq 1 ] || fail "--csv with a missing file: exit status not 1"
    grep -qF "\"$work/set/with, \"\"quotes\"\".png\"," "$work/csv" || fail "path not quoted as RFC 4180: $(cat "$work/csv")"
    python3 - "$work/csv" "$work/out" "$work/missing.png" <<'PY' || fail "bad CSV: $(cat "$work/csv")"
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["image", "caption", "error"], rows[0]
records = [json.loads(line) for line in open(sys.argv[2])]
assert rows[1:4] == [[r["image"], r["caption"], ""] for r in records], rows
assert rows[4][0] == sys.argv[3] and rows[4][1] == "" and "no such file" in rows[4][2], rows[4]
assert len(rows) == 5
PY
    ;;
  coco_results)  # --coco-results: a COCO results file blip_eval caption scores; the prompt cut off; unknown images fail
    python3 - "$work/annotations.json" "${images[@]:0:3}" <<'PY'
import json, os, sys
images = [{"id": 100 + i, "file_name": "val/" + os.path.basename(p)} for i, p in enumerate(sys.argv[2:])]
annotations = [{"image_id": 100 + i, "id": i, "caption": "a photo of something"} for i in range(len(images))]
json.dump({"images": images, "annotations": annotations}, open(sys.argv[1], "w"))
PY
    "${caption[@]}" "${images[@]:0:4}" --prompt "a picture of" --json --coco-annotations "$work/annotations.json" \
      --coco-results "$work/results.json" > "$work/out" 2> "$work/err"
    [ $? -eq 1 ] || fail "an image missing from the annotations: exit status not 1"
    grep -qF "not among the images of $work/annotations.json" "$work/err" || fail "no message: $(cat "$work/err")"
    python3 - "$work/out" "$work/results.json" <<'PY' || fail "results file: $(cat "$work/results.json")"
import json, os, sys
records = [json.loads(line) for line in open(sys.argv[1])]
results = json.load(open(sys.argv[2]))
assert [r["image_id"] for r in results] == [100, 101, 102], results
for record, result in zip(records[:3], results):
    assert record["caption"].startswith("a picture of"), record
    assert result["caption"] == record["caption"][len("a picture of"):].lstrip(" "), (record, result)
assert "error" in records[3], records[3]
PY
    "$bin/blip_eval" caption --annotations "$work/annotations.json" --results "$work/results.json" > "$work/scores" \
      2> "$work/err" || fail "blip_eval on the results: $(cat "$work/err")"
    grep -qF '"CIDEr"' "$work/scores" || fail "no scores: $(cat "$work/scores")"
    "${caption[@]}" "${images[0]}" --coco-results "$work/results.json" > /dev/null 2> "$work/err"
    [ $? -eq 2 ] && grep -qF "go together" "$work/err" || fail "--coco-results alone: $(cat "$work/err")"
    ;;
  batch_single)  # a batch's captions are each image's alone (greedy and beam search)
    for flags in "--batch 5" "--batch 5 --beams 3" "--batch 12 --prompt a-picture-of"; do
      # shellcheck disable=SC2086
      "${caption[@]}" "${images[@]}" $flags > "$work/batched" 2> /dev/null || fail "$flags"
      read -r _ _ rest <<< "$flags"  # the flags after --batch N
      # shellcheck disable=SC2086
      "${caption[@]}" "${images[@]}" $rest --batch 1 > "$work/single" 2> /dev/null || fail "--batch 1"
      [ "$(wc -l < "$work/batched")" -eq 12 ] || fail "$flags: expected 12 lines"
      cmp -s "$work/batched" "$work/single" || fail "$flags differs from --batch 1: $(diff "$work/batched" "$work/single")"
    done
    # And each image in its own process, as before any of this (greedy).
    "${caption[@]}" "${images[@]}" --batch 5 > "$work/batched" 2> /dev/null
    for image in "${images[@]}"; do "${caption[@]}" "$image" 2> /dev/null; done > "$work/alone"
    cmp -s "$work/batched" "$work/alone" || fail "--batch 5 differs from one process per image"
    "${caption[@]}" "${images[@]}" --batch 5 --no-read-ahead > "$work/serial" 2> /dev/null
    cmp -s "$work/batched" "$work/serial" || fail "--no-read-ahead differs"
    ;;
  vqa_questions)  # --questions: the answers of one run per question, the model loaded once
    need "$fixtures/blip_vqa"
    printf '%s\n' "what is in the picture?" "" "how many animals, roughly?" "is it \"red\"?" > "$work/questions"
    vqa=("$bin/blip_vqa" "$fixtures/blip_vqa" --tokenizer "$tokenizer")
    "${vqa[@]}" "${images[0]}" --questions "$work/questions" --json > "$work/many" 2> "$work/err" \
      || fail "--questions: $(cat "$work/err")"
    [ "$(grep -c "prepared the model" "$work/err")" -eq 1 ] || fail "the model was not loaded once"
    : > "$work/separate"
    while IFS= read -r question; do
      [ -n "$question" ] || continue
      "${vqa[@]}" "${images[0]}" "$question" --json >> "$work/separate" 2> /dev/null || fail "blip_vqa '$question'"
    done < "$work/questions"
    [ "$(wc -l < "$work/separate")" -eq 3 ] || fail "expected 3 separate answers"
    cmp -s "$work/many" "$work/separate" || fail "--questions differs from separate runs: $(diff "$work/many" "$work/separate")"
    # Images x questions, a missing image in between: its error record in place, exit status 1.
    "${vqa[@]}" "${images[0]}" "$work/missing.png" "${images[1]}" --questions - --csv < "$work/questions" \
      > "$work/csv" 2> "$work/err"
    [ $? -eq 1 ] || fail "a missing image: exit status not 1"
    python3 - "$work/csv" "$work/many" "$work/missing.png" <<'PY' || fail "bad CSV: $(cat "$work/csv")"
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["image", "question", "answer", "error"], rows[0]
assert len(rows) == 1 + 3 + 1 + 3, rows
separate = [json.loads(line) for line in open(sys.argv[2])]
assert [row[1:3] for row in rows[1:4]] == [[r["question"], r["answer"]] for r in separate], rows
assert rows[4][0] == sys.argv[3] and "no such file" in rows[4][3], rows[4]
assert all(row[3] == "" for row in rows[1:4] + rows[5:]), rows
PY
    ;;
  blip2)  # the same over BLIP-2 folders (OPT and Flan-T5): batches equal single images; --questions
    opt="$assets/tokenizers/blip2-opt-2.7b" t5="$assets/tokenizers/blip2-flan-t5-xl"
    need "$fixtures/blip2_opt" "$fixtures/blip2_t5" "$fixtures/blip2_opt_imgtok" "$opt" "$t5"
    printf 'not an image' > "$work/corrupt.png"
    for pair in "blip2_opt:$opt" "blip2_t5:$t5"; do
      model=${pair%%:*} model_tokenizer=${pair#*:}
      run=("$bin/blip_caption" "$fixtures/$model" --tokenizer "$model_tokenizer" --max-new-tokens 6 --beams 2)
      "${run[@]}" "${images[@]:0:6}" "$work/corrupt.png" --batch 4 --json > "$work/batched" 2> "$work/err"
      [ $? -eq 1 ] || fail "$model: exit status not 1 with a corrupt file"
      "${run[@]}" "${images[@]:0:6}" --batch 1 --json > "$work/single" 2> /dev/null || fail "$model --batch 1"
      [ "$(grep -c '"caption"' "$work/batched")" -eq 6 ] && [ "$(grep -c '"error"' "$work/batched")" -eq 1 ] \
        || fail "$model: expected 6 captions and 1 error: $(cat "$work/batched")"
      grep '"caption"' "$work/batched" | cmp -s - "$work/single" || fail "$model: --batch 4 differs from --batch 1"
    done
    printf '%s\n' "what is this?" "what colour is it?" "why?" > "$work/questions"
    vqa=("$bin/blip_vqa" "$fixtures/blip2_opt_imgtok" --tokenizer "$opt" --max-new-tokens 5)
    "${vqa[@]}" "${images[0]}" --questions "$work/questions" --json > "$work/many" 2> /dev/null || fail "BLIP-2 --questions"
    : > "$work/separate"
    while IFS= read -r question; do
      "${vqa[@]}" "${images[0]}" "$question" --json >> "$work/separate" 2> /dev/null || fail "BLIP-2 '$question'"
    done < "$work/questions"
    cmp -s "$work/many" "$work/separate" || fail "BLIP-2 --questions differs: $(diff "$work/many" "$work/separate")"
    ;;
  *) fail "unknown check $check" ;;
esac
echo "PASS: $check"
