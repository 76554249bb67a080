#!/usr/bin/env bash
# usage: check_blip_weights.sh CHECK BLIP_WEIGHTS BIN_DIR FIXTURES_DIR ASSETS_DIR
# blip_weights end to end (inspect, make-random, download from a local mirror)
# and model ids resolved through the Hugging Face cache by blip_caption.
# Exit 0 = pass, 77 = skipped (inputs absent), anything else = failure. No network.
set -u
check=$1 tool=$2 bin=$3 fixtures=$4 assets=$5
tokenizer="$assets/tokenizers/blip-image-captioning-base"
# The tokenizer files only: that folder's config.json and preprocessor_config.json are the full-size model's.
tokenizer_files=(tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/common.sh
source "$here/../cli/common.sh"
need "$fixtures/blip_caption/model.safetensors"

# Starts hub_mirror.py on ROOT with extra arguments; sets $endpoint and $server.
start_mirror() {
  local root=$1; shift
  rm -f "$work/port"
  python3 "$here/hub_mirror.py" --root "$root" --port-file "$work/port" --log "$work/requests.log" "$@" &
  server=$!
  trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || fail "the mirror server did not start"
  endpoint="http://127.0.0.1:$(cat "$work/port")"
}

# A mirror of the captioning fixture as repository Org/tiny-blip, with the
# tokenizer files the captioning program needs.
make_mirror() {
  need "$tokenizer"
  mkdir -p "$work/mirror/Org/tiny-blip"
  cp "$fixtures/blip_caption/config.json" "$fixtures/blip_caption/model.safetensors" "$work/mirror/Org/tiny-blip/"
  for file in "${tokenizer_files[@]}"; do cp "$tokenizer/$file" "$work/mirror/Org/tiny-blip/"; done
  echo "not wanted by default" > "$work/mirror/Org/tiny-blip/pytorch_model.bin"
}

first_image() {
  need "$assets/images"
  find "$assets/images" -type f \( -name '*.png' -o -name '*.jpg' \) | sort | head -1
}

case $check in
  inspect)
    found=0
    for model in "$fixtures"/*/; do
      [ -f "$model/config.json" ] && [ -f "$model/model.safetensors" ] || continue
      found=$((found + 1))
      "$tool" inspect "$model" > "$work/out" 2> "$work/err" || { cat "$work/out" "$work/err"; fail "inspect $model exited with $?"; }
      grep -q "^loads: yes" "$work/out" || fail "$model: no 'loads: yes'"
      grep -q "^missing (0)" "$work/out" || fail "$model: tensors missing"
      grep -q "^wrong shape (0)" "$work/out" || fail "$model: tensors mis-shaped"
      "$tool" inspect "$model" --json > "$work/json" || fail "inspect --json $model failed"
      python3 - "$work/json" <<'PY' || fail "$model: bad inspect JSON"
import json, sys
report = json.load(open(sys.argv[1]))
assert report["loadable"] is True and report["missing"] == [] and report["wrong_shape"] == [], report
assert report["model_class"] in report["architectures"], report
assert report["expected_count"] > 10 and report["tensor_count"] == len(report["tensors"])
assert sum(report["bytes_per_dtype"].values()) == report["total_bytes"]
PY
    done
    [ $found -ge 3 ] || fail "expected at least 3 fixture models, found $found"
    # A folder without weights: a clear error naming it, exit status 1.
    mkdir -p "$work/empty" && cp "$fixtures/blip_caption/config.json" "$work/empty/"
    "$tool" inspect "$work/empty" > /dev/null 2> "$work/err"; status=$?
    [ $status -eq 1 ] || fail "inspect on a folder without weights: exit $status, expected 1"
    grep -q "neither model.safetensors" "$work/err" || fail "unclear error: $(cat "$work/err")"
    ;;
  make_random)
    # Every fixture's config -> random weights the loader accepts (inspect), single-file and sharded bf16.
    for model in "$fixtures"/*/; do
      [ -f "$model/config.json" ] && [ -f "$model/model.safetensors" ] || continue
      name=$(basename "$model")
      "$tool" make-random "$model" "$work/$name" --seed 3 > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "make-random $name"; }
      "$tool" inspect "$work/$name" > "$work/out" || { cat "$work/out"; fail "$name: random checkpoint does not load"; }
      grep -q "^unexpected (0)" "$work/out" || fail "$name: make-random wrote tensors the loader does not read"
      # Same tensor names and shapes as the real checkpoint wherever the loader reads them.
      "$tool" inspect "$model" --json > "$work/real.json"
      "$tool" inspect "$work/$name" --json > "$work/random.json"
      python3 - "$work/real.json" "$work/random.json" <<'PY' || fail "$name: random tensors differ from the real ones"
import json, sys
real, random = (json.load(open(p)) for p in sys.argv[1:])
used = {t["name"]: t["shape"] for t in real["tensors"]} 
unexpected = set(real["unexpected"])
for t in random["tensors"]:
    assert t["name"] in used and used[t["name"]] == t["shape"], t
assert len(random["tensors"]) == len(used) - len(unexpected), (len(random["tensors"]), len(used), len(unexpected))
PY
    done
    "$tool" make-random "$fixtures/blip_caption" "$work/sharded" --dtype bf16 --max-shard-size 200KB > "$work/out" \
      || fail "sharded make-random failed"
    [ -f "$work/sharded/model.safetensors.index.json" ] || fail "no index for a sharded checkpoint"
    ls "$work/sharded"/model-0000*-of-*.safetensors > /dev/null || fail "no shards"
    "$tool" inspect "$work/sharded" --json > "$work/json" || fail "sharded random checkpoint does not load"
    python3 -c "import json; r=json.load(open('$work/json')); assert list(r['bytes_per_dtype']) == ['BF16'], r['bytes_per_dtype']" \
      || fail "expected BF16 only"
    # The same seed gives the same bytes; another seed other bytes.
    "$tool" make-random "$fixtures/blip_caption" "$work/again" --seed 3 > /dev/null
    cmp -s "$work/blip_caption/model.safetensors" "$work/again/model.safetensors" || fail "same seed, other weights"
    "$tool" make-random "$fixtures/blip_caption" "$work/other" --seed 4 > /dev/null
    cmp -s "$work/blip_caption/model.safetensors" "$work/other/model.safetensors" && fail "another seed, same weights"
    # And the captioning program runs on it (random words, but a line per image).
    image=$(first_image)
    need "$tokenizer"
    "$bin/blip_caption" "$work/blip_caption" "$image" --tokenizer "$tokenizer" --max-new-tokens 5 > "$work/out" 2> "$work/err" \
      || { cat "$work/err"; fail "blip_caption on random weights failed"; }
    grep -qF "$image: " "$work/out" || fail "no caption line"
    ;;
  download)
    make_mirror
    start_mirror "$work/mirror"
    "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache" > "$work/out" 2> "$work/err" \
      || { cat "$work/err"; fail "download failed"; }
    snapshot=$(cat "$work/out")
    repo="$work/cache/models--Org--tiny-blip"
    [ "$snapshot" = "$repo/snapshots/0123456789abcdef0123456789abcdef01234567" ] || fail "unexpected snapshot path $snapshot"
    [ "$(cat "$repo/refs/main")" = "0123456789abcdef0123456789abcdef01234567" ] || fail "refs/main"
    [ -L "$snapshot/model.safetensors" ] || fail "snapshot files must be symlinks into blobs/"
    sha=$(sha256sum "$work/mirror/Org/tiny-blip/model.safetensors" | cut -d' ' -f1)
    [ "$(readlink "$snapshot/model.safetensors")" = "../../blobs/$sha" ] || fail "LFS blob not named by its sha256"
    cmp "$snapshot/model.safetensors" "$work/mirror/Org/tiny-blip/model.safetensors" || fail "weights differ"
    cmp "$snapshot/config.json" "$work/mirror/Org/tiny-blip/config.json" || fail "config differs"
    [ -e "$snapshot/pytorch_model.bin" ] && fail "pytorch_model.bin fetched although not in the default patterns"
    ls "$repo/blobs" | grep -q incomplete && fail "a .incomplete file was left"
    # Python's huggingface_hub finds it (when installed): the layout is shared.
    if python3 -c "import huggingface_hub" 2> /dev/null; then
      HF_HUB_OFFLINE=1 python3 -c "
from huggingface_hub import snapshot_download
path = snapshot_download('Org/tiny-blip', cache_dir='$work/cache', local_files_only=True)
assert path == '$snapshot', path" || fail "huggingface_hub does not see the download"
    fi
    # A second run fetches nothing.
    : > "$work/requests.log"
    "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache" > /dev/null 2> "$work/err" || fail "second run"
    grep -q "/resolve/" "$work/requests.log" && fail "second run downloaded again: $(cat "$work/requests.log")"
    # The id is a model folder for the programs, through HF_HUB_CACHE.
    image=$(first_image)
    HF_HUB_CACHE="$work/cache" "$bin/blip_caption" Org/tiny-blip "$image" --max-new-tokens 5 > "$work/out" 2> "$work/err" \
      || { cat "$work/err"; fail "blip_caption Org/tiny-blip from the cache failed"; }
    grep -qF "$image: " "$work/out" || fail "no caption line"
    ;;
  download_resume)
    make_mirror
    size=$(stat -c %s "$work/mirror/Org/tiny-blip/model.safetensors")
    # 1. The connection drops after 100000 bytes: the same run continues with a Range request.
    start_mirror "$work/mirror" --drop-after 100000
    "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache" > "$work/out" 2> "$work/err" \
      || { cat "$work/err"; fail "download with a dropped connection failed"; }
    grep -q "connection lost after 100000" "$work/err" || fail "the drop was not reported: $(cat "$work/err")"
    grep -q "range=bytes=100000-" "$work/requests.log" || fail "no Range request: $(cat "$work/requests.log")"
    cmp "$(cat "$work/out")/model.safetensors" "$work/mirror/Org/tiny-blip/model.safetensors" || fail "resumed file differs"
    # 2. A partial file left by an earlier run (or by huggingface_hub) is continued.
    sha=$(sha256sum "$work/mirror/Org/tiny-blip/model.safetensors" | cut -d' ' -f1)
    rm -rf "$work/cache2" && mkdir -p "$work/cache2/models--Org--tiny-blip/blobs"
    head -c 12345 "$work/mirror/Org/tiny-blip/model.safetensors" > "$work/cache2/models--Org--tiny-blip/blobs/$sha.incomplete"
    : > "$work/requests.log"
    "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache2" --include '*.safetensors' \
      > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "resume of a partial file failed"; }
    grep -q "resumed at 12345" "$work/err" || fail "not resumed: $(cat "$work/err")"
    grep -q "range=bytes=12345-" "$work/requests.log" || fail "no Range request from 12345"
    cmp "$(cat "$work/out")/model.safetensors" "$work/mirror/Org/tiny-blip/model.safetensors" || fail "resumed file differs"
    [ "$(stat -L -c %s "$(cat "$work/out")/model.safetensors")" = "$size" ] || fail "size"
    ;;
  download_bad_sha)
    make_mirror
    start_mirror "$work/mirror" --bad-sha256 model.safetensors
    "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache" > "$work/out" 2> "$work/err"; status=$?
    [ $status -eq 1 ] || fail "exit $status on a sha256 mismatch, expected 1"
    grep -q "model.safetensors: sha256 mismatch" "$work/err" || fail "unclear error: $(cat "$work/err")"
    blobs="$work/cache/models--Org--tiny-blip/blobs"
    [ -e "$blobs/$(printf 'f%.0s' $(seq 64))" ] && fail "the bad blob was installed"
    ls "$blobs" | grep -q incomplete && fail "the bad download was kept as .incomplete"
    [ -e "$work/cache/models--Org--tiny-blip/snapshots/0123456789abcdef0123456789abcdef01234567/model.safetensors" ] \
      && fail "the snapshot links a file that failed its check"
    # The same for a file outside LFS, checked by its git blob id.
    kill $server; wait $server 2>/dev/null
    start_mirror "$work/mirror" --bad-blob-id config.json
    "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache3" > /dev/null 2> "$work/err"; status=$?
    [ $status -eq 1 ] || fail "exit $status on a git blob id mismatch, expected 1"
    grep -q "config.json: git blob id mismatch" "$work/err" || fail "unclear error: $(cat "$work/err")"
    [ -e "$work/cache3/models--Org--tiny-blip/blobs/$(printf 'e%.0s' $(seq 40))" ] && fail "the bad blob was installed"
    ;;
  download_offline)
    # Nothing listens on port 9: a quick, clear error; unknown repositories: 404 named.
    "$tool" download Org/tiny-blip --endpoint http://127.0.0.1:9 --cache-dir "$work/cache" > /dev/null 2> "$work/err"; status=$?
    [ $status -eq 1 ] || fail "exit $status when the server is unreachable, expected 1"
    grep -q "cannot reach http://127.0.0.1:9" "$work/err" || fail "unclear error: $(cat "$work/err")"
    make_mirror
    start_mirror "$work/mirror"
    "$tool" download Org/absent --endpoint "$endpoint" --cache-dir "$work/cache" > /dev/null 2> "$work/err"; status=$?
    [ $status -eq 1 ] || fail "exit $status for an unknown repository"
    grep -q "404 Not Found" "$work/err" || fail "unclear error: $(cat "$work/err")"
    "$tool" download not/a/repo --endpoint "$endpoint" > /dev/null 2>&1; status=$?
    [ $status -eq 2 ] || fail "exit $status for a malformed repository id, expected 2"
    # Once cached, an unreachable endpoint or HF_HUB_OFFLINE=1 gives the cached snapshot (as huggingface_hub).
    "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache" > "$work/online" 2> /dev/null \
      || fail "download from the mirror failed"
    "$tool" download Org/tiny-blip --endpoint http://127.0.0.1:9 --cache-dir "$work/cache" > "$work/out" 2> "$work/err" \
      || fail "unreachable endpoint with a cached snapshot: exit $?: $(cat "$work/err")"
    cmp -s "$work/online" "$work/out" || fail "offline run printed another folder: $(cat "$work/out")"
    grep -q "using the cached snapshot" "$work/err" || fail "offline fallback not reported"
    : > "$work/requests.log"
    HF_HUB_OFFLINE=1 "$tool" download Org/tiny-blip --endpoint "$endpoint" --cache-dir "$work/cache" > "$work/out" 2> /dev/null \
      || fail "HF_HUB_OFFLINE=1 with a cached snapshot failed"
    cmp -s "$work/online" "$work/out" || fail "HF_HUB_OFFLINE printed another folder"
    [ -s "$work/requests.log" ] && fail "HF_HUB_OFFLINE=1 still contacted the endpoint"
    HF_HUB_OFFLINE=1 "$tool" download Org/other --cache-dir "$work/cache" > /dev/null 2> "$work/err"; status=$?
    [ $status -eq 1 ] && grep -q "HF_HUB_OFFLINE is set" "$work/err" || fail "HF_HUB_OFFLINE without a snapshot: $(cat "$work/err")"
    ;;
  download_https)
    # https through cpp-httplib's OpenSSL, with certificate verification: a self-signed certificate
    # is refused until SSL_CERT_FILE names it (OpenSSL's default verify paths honour that variable).
    command -v openssl > /dev/null || need /usr/bin/openssl
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=127.0.0.1 \
      -addext subjectAltName=IP:127.0.0.1 -days 1 2> /dev/null || fail "openssl could not make a certificate"
    make_mirror
    start_mirror "$work/mirror" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
    https_endpoint="https://${endpoint#http://}"
    "$tool" download Org/tiny-blip --endpoint "$https_endpoint" --cache-dir "$work/cache" > /dev/null 2> "$work/err"; status=$?
    grep -q "built without OpenSSL\|without cpp-httplib" "$work/err" && { echo "SKIPPED: no https in this build"; exit 77; }
    [ $status -eq 1 ] || fail "an untrusted certificate was accepted (exit $status)"
    grep -q "SSLServerVerification.*SSL_CERT_FILE" "$work/err" || fail "unclear error: $(cat "$work/err")"
    SSL_CERT_FILE="$work/cert.pem" "$tool" download Org/tiny-blip --endpoint "$https_endpoint" --cache-dir "$work/cache" \
      > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "https download failed"; }
    cmp "$(cat "$work/out")/model.safetensors" "$work/mirror/Org/tiny-blip/model.safetensors" || fail "weights differ"
    ;;
  model_id)
    # A fake cache (refs/main -> snapshots/<commit>/ symlinks to the fixture's files), found through
    # HF_HOME/hub and HF_HUB_CACHE; a missing id says where it looked.
    need "$tokenizer"
    image=$(first_image)
    commit=89abcdef0123456789abcdef0123456789abcdef
    snapshot="$work/home/hub/models--Salesforce--blip-image-captioning-base/snapshots/$commit"
    mkdir -p "$snapshot" "$work/home/hub/models--Salesforce--blip-image-captioning-base/refs"
    printf %s $commit > "$work/home/hub/models--Salesforce--blip-image-captioning-base/refs/main"
    for file in config.json model.safetensors; do ln -s "$fixtures/blip_caption/$file" "$snapshot/$file"; done
    for file in "${tokenizer_files[@]}"; do ln -s "$tokenizer/$file" "$snapshot/$file"; done
    ( cd "$work" && env -u HF_HUB_CACHE HF_HOME="$work/home" "$bin/blip_caption" Salesforce/blip-image-captioning-base "$image" \
        --max-new-tokens 5 ) > "$work/out" 2> "$work/err" || { cat "$work/err"; fail "blip_caption with a model id failed"; }
    grep -qF "$image: " "$work/out" || fail "no caption line"
    HF_HUB_CACHE="$work/home/hub" "$tool" inspect Salesforce/blip-image-captioning-base > "$work/out" \
      || fail "inspect with a model id failed"
    grep -q "^model folder: .*snapshots/$commit" "$work/out" || fail "inspect did not resolve the id: $(head -1 "$work/out")"
    ( cd "$work" && HF_HUB_CACHE="$work/empty-cache" "$bin/blip_caption" Salesforce/blip-vqa-base "$image" ) \
      > /dev/null 2> "$work/err"; status=$?
    [ $status -ne 0 ] || fail "a model id that is not cached succeeded"
    grep -q "not in the Hugging Face cache $work/empty-cache" "$work/err" || fail "unclear error: $(cat "$work/err")"
    grep -q "models--Salesforce--blip-vqa-base/refs/main (missing)" "$work/err" || fail "does not say where it looked"
    grep -q "blip_weights download Salesforce/blip-vqa-base" "$work/err" || fail "does not say how to get it"
    ;;
  *) fail "unknown check $check" ;;
esac
echo "PASS: $check"
