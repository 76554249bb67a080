#!/usr/bin/env bash
# download_hf_model.sh REPO_ID DEST_DIR [REVISION]
#
# Downloads the files blipcpp reads from a Hugging Face model repository into
# DEST_DIR, with plain curl from <endpoint>/<REPO_ID>/resolve/<REVISION>/<file>:
#   config.json (required), generation_config.json, preprocessor_config.json,
#   processor_config.json, the tokenizer files (tokenizer.json,
#   tokenizer_config.json, special_tokens_map.json, added_tokens.json,
#   vocab.txt, vocab.json, merges.txt, spiece.model), and the weights:
#   model.safetensors, or model.safetensors.index.json plus every shard it names.
# Optional files the repository does not have (HTTP 404) are skipped.
#
# Environment:
#   HF_ENDPOINT  server to use (default https://huggingface.co), e.g. a mirror
#   HF_TOKEN     access token, sent as a Bearer header (gated/private repos only)
#
# Exit status: 0 done; 1 a download failed (HTTP error, missing required
# file, no safetensors weights); 2 bad arguments; 3 the server cannot be
# reached (offline machine, DNS, proxy): it fails within seconds, before
# creating anything in DEST_DIR.
#
# Files are written as <name>.part and renamed when complete, so DEST_DIR
# never holds a truncated file under its real name; a file already present is
# kept (re-running after an interruption resumes with the missing files;
# delete DEST_DIR to refresh).
set -euo pipefail

program=$(basename "$0")

usage() {
  cat >&2 <<EOF
usage: $program REPO_ID DEST_DIR [REVISION]
  REPO_ID   Hugging Face model id, e.g. Salesforce/blip-image-captioning-base
  DEST_DIR  folder to create / complete
  REVISION  branch, tag or commit (default: main); "refs/pr/N" works too
EOF
  exit 2
}

die() {
  local status=$1
  shift
  echo "$program: error: $*" >&2
  exit "$status"
}

[[ $# -eq 2 || $# -eq 3 ]] || usage
repo_id=$1
dest_dir=$2
revision=${3:-main}
endpoint=${HF_ENDPOINT:-https://huggingface.co}
endpoint=${endpoint%/}

[[ $repo_id =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
  die 2 "REPO_ID must look like owner/name (got '$repo_id')"
[[ -n $dest_dir ]] || die 2 "DEST_DIR is empty"
[[ -n $revision && $revision != *..* ]] || die 2 "bad REVISION '$revision'"
command -v curl >/dev/null 2>&1 || die 1 "curl is required but was not found in PATH"

# A revision such as refs/pr/3 goes into the URL with its slashes encoded.
encoded_revision=${revision//\//%2F}
base_url="$endpoint/$repo_id/resolve/$encoded_revision"

curl_options=(--silent --show-error --location --connect-timeout 10 --retry 2 --retry-delay 2)
if [[ -n ${HF_TOKEN:-} ]]; then
  # curl drops this header when a redirect leaves the host (LFS files are
  # served from a CDN), so the token is only sent to the endpoint.
  curl_options+=(--header "Authorization: Bearer $HF_TOKEN")
fi

# ---- fail fast when the server is unreachable --------------------------------
# One quick request before anything else: an offline machine fails here in
# well under a second (DNS) or after the 10 s connect timeout, never after
# partial downloads.
probe_error=$(curl --silent --show-error --head --output /dev/null --connect-timeout 10 --max-time 20 \
  "$endpoint/" 2>&1) || {
  status=$?
  die 3 "cannot reach $endpoint (curl exit $status: ${probe_error:-no message})." \
    "This machine looks offline or behind a proxy. Download on a connected machine" \
    "(same command) and copy the folder over, or set HF_ENDPOINT to a reachable mirror."
}

mkdir -p "$dest_dir" || die 1 "cannot create $dest_dir"

human_size() {
  local bytes=$1
  if ((bytes >= 1073741824)); then
    awk -v b="$bytes" 'BEGIN { printf "%.2f GiB", b / 1073741824 }'
  elif ((bytes >= 1048576)); then
    awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'
  else
    echo "$bytes B"
  fi
}

# fetch FILE required|optional
#   0: the file is in DEST_DIR (downloaded now or already there)
#   1: optional file absent from the repository (404)
#   exits the script on any other failure
fetch() {
  local file=$1 kind=$2
  local target="$dest_dir/$file"
  local part="$target.part"
  local url="$base_url/$file"
  if [[ -s $target ]]; then
    echo "  kept     $file (already present)"
    return 0
  fi
  local progress=()
  if [[ $file == *.safetensors && -t 2 ]]; then progress=(--progress-bar); fi
  local http_status curl_status=0
  http_status=$(curl "${curl_options[@]}" "${progress[@]}" --output "$part" --write-out '%{http_code}' "$url") ||
    curl_status=$?
  if ((curl_status != 0)) && [[ $http_status == 000 || -z $http_status ]]; then
    rm -f "$part"
    die 3 "lost the connection to $endpoint while downloading $file (curl exit $curl_status)"
  fi
  case $http_status in
    200)
      ((curl_status == 0)) || { rm -f "$part"; die 1 "download of $url failed (curl exit $curl_status)"; }
      mv -f "$part" "$target"
      echo "  fetched  $file ($(human_size "$(stat -c %s "$target")"))"
      return 0
      ;;
    404)
      rm -f "$part"
      if [[ $kind == optional ]]; then
        echo "  absent   $file (optional, not in the repository)"
        return 1
      fi
      die 1 "$file not found in $repo_id at revision '$revision' ($url)"
      ;;
    401 | 403)
      rm -f "$part"
      die 1 "HTTP $http_status for $url: the repository does not exist, is private, or is gated" \
        "(accept its terms on the website and export HF_TOKEN=<your token>)"
      ;;
    *)
      rm -f "$part"
      die 1 "HTTP $http_status for $url"
      ;;
  esac
}

echo "Downloading $repo_id@$revision from $endpoint into $dest_dir"

fetch config.json required
for file in generation_config.json preprocessor_config.json processor_config.json \
  tokenizer.json tokenizer_config.json special_tokens_map.json added_tokens.json \
  vocab.txt vocab.json merges.txt spiece.model; do
  fetch "$file" optional || true
done

# ---- weights: one file, or an index and its shards ----------------------------
if fetch model.safetensors optional; then
  :
elif fetch model.safetensors.index.json optional; then
  # Shard names are the values of "weight_map"; tensor names never end in
  # .safetensors, so every quoted *.safetensors string is a shard.
  mapfile -t shards < <(grep -o '"[^"]*\.safetensors"' "$dest_dir/model.safetensors.index.json" | tr -d '"' | sort -u)
  ((${#shards[@]} > 0)) || die 1 "model.safetensors.index.json names no shard files"
  for shard in "${shards[@]}"; do
    [[ $shard =~ ^[A-Za-z0-9._-]+$ ]] || die 1 "unexpected shard name '$shard' in the index"
    fetch "$shard" required
  done
else
  die 1 "$repo_id@$revision has no model.safetensors nor model.safetensors.index.json." \
    "blipcpp reads safetensors only; some older repositories keep them on a pull-request" \
    "branch (try REVISION refs/pr/<N> from the repository's 'Files' page) or need converting" \
    "pytorch_model.bin with the safetensors library."
fi

total_bytes=$(du -sb "$dest_dir" | cut -f1)
echo "Done: $dest_dir ($(human_size "$total_bytes"))"
