#!/usr/bin/env bash
# The main job in one command, from a fresh Debian 12 machine:
#   scripts/caption.sh IMAGE [IMAGE ...]
# installs the packages, builds blip_caption and blip_weights, downloads the
# Hugging Face model (Salesforce/blip-image-captioning-base by default) into the
# Hugging Face cache (~/.cache/huggingface/hub, shared with Python) unless it is
# there already, and prints a caption per image.
#
#   BLIP_MODEL=Salesforce/blip-image-captioning-large scripts/caption.sh photo.jpg
#   BLIP_MODEL_DIR=/path/to/model-folder scripts/caption.sh photo.jpg   (a folder you already have)
# Extra blip_caption options go after the images, e.g. --beams 3 --prompt "a picture of".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -lt 1 ] || [ "$1" = "--help" ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  if [ $# -ge 1 ]; then exit 0; fi  # --help
  exit 2  # no image given: a usage error, as in the programs
fi
repository=${BLIP_MODEL:-Salesforce/blip-image-captioning-base}

# Install and build only when needed: the two programs exist and no source file is newer than them.
programs=(build/examples/blip_caption build/weights_tools/blip_weights)
up_to_date=yes
for program in "${programs[@]}"; do
  if [ ! -x "$program" ] || [ -n "$(find include examples weights_tools CMakeLists.txt -newer "$program" -type f -print -quit)" ]; then
    up_to_date=no
  fi
done
if [ "$up_to_date" = no ]; then
  scripts/install_dependencies.sh
  # -march=native: this build runs here only, with every instruction this CPU has.
  cmake -B build -DCMAKE_BUILD_TYPE=Release -DBLIP_NATIVE=ON -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=OFF >/dev/null
  cmake --build build -j"$(nproc)" --target blip_caption blip_weights
fi

if [ -n "${BLIP_MODEL_DIR:-}" ]; then
  model_dir=$BLIP_MODEL_DIR
# blip_weights download reuses what the cache holds (files already there are not fetched again),
# prints the snapshot folder, and resumes an interrupted download on the next run.
elif ! model_dir=$(build/weights_tools/blip_weights download "$repository"); then
  cat >&2 <<MSG

caption.sh: $repository is not in the Hugging Face cache and could not be downloaded.
Download it on a machine with network access
  (build/weights_tools/blip_weights download $repository, or huggingface-cli download $repository)
and copy the cache folder (~/.cache/huggingface/hub/models--${repository/\//--}) here, or point
BLIP_MODEL_DIR at a model folder you already have.
MSG
  exit 3
fi
exec build/examples/blip_caption "$model_dir" "$@"
