#!/usr/bin/env bash
# The main job in one command, from a fresh Debian 12 machine:
#   scripts/caption.sh IMAGE [IMAGE ...]
# installs the packages, builds blip_caption, fetches the Hugging Face model
# folder (Salesforce/blip-image-captioning-base by default) into models/ if it
# is not there yet, and prints a caption per image.
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
model_dir=${BLIP_MODEL_DIR:-models/${repository##*/}}

scripts/install_dependencies.sh
# -march=native: this build runs here only, with every instruction this CPU has.
cmake -B build -DCMAKE_BUILD_TYPE=Release -DBLIP_NATIVE=ON -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)" --target blip_caption

if [ ! -f "$model_dir/config.json" ]; then
  if ! weights_tools/download_hf_model.sh "$repository" "$model_dir"; then
    cat >&2 <<MSG

caption.sh: no model folder at $model_dir and it could not be downloaded.
Download $repository on a machine with network access
  (weights_tools/download_hf_model.sh $repository $model_dir)
and copy the folder here, or point BLIP_MODEL_DIR at a folder you already have.
MSG
    exit 3
  fi
fi
exec build/examples/blip_caption "$model_dir" "$@"
