#!/usr/bin/env bash
# What including blip costs the compiler: time and peak memory (/usr/bin/time -v, "Maximum resident
# set size") of the three translation units README.md's "Compile time" compares:
#   (a) the README's example on blip/blip.hpp, the header-only form;
#   (b) the same program on the facade blip/api.hpp alone (tests/consumer/project/facade_caption.cpp);
#   (c) the facade's implementation, compiled once per program (src/blip_compiled.cpp = blip::compiled).
# Each is compiled to an object file with the flags of the README's pkg-config line (-std=c++17 -O2,
# OpenMP, Eigen and stb), one after the other.   Usage: scripts/compile_cost.sh [COMPILER]
set -euo pipefail
cd "$(dirname "$0")/.."
compiler="${1:-c++}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# (a): README.md's example, as tests/consumer/project/main.cpp compiles it.
cat > "$work/readme_example.cpp" <<'CPP'
#include <blip/blip.hpp>
#include <cstdio>

int main() {
  blip::Captioner captioner = blip::Captioner::load("models/blip-image-captioning-base");
  blip::Image image = blip::load_image("photo.jpg");
  blip::CaptionOptions options = captioner.default_options();
  options.generation.num_beams = 3;
  std::printf("%s\n", captioner.caption(image, options).c_str());
}
CPP

flags=(-std=c++17 -O2 -fopenmp -Iinclude $(pkg-config --cflags eigen3 stb))
echo "compiler: $("$compiler" --version | head -n 1); flags: ${flags[*]}"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) processors; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-58s %10s %10s %12s\n' "translation unit" "wall s" "user s" "peak RSS MB"
for source in "$work/readme_example.cpp" tests/consumer/project/facade_caption.cpp src/blip_compiled.cpp; do
  /usr/bin/time -v -o "$work/time.txt" "$compiler" "${flags[@]}" -c "$source" -o "$work/out.o"
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt" |
         awk -F: '{ seconds = 0; for (i = 1; i <= NF; ++i) seconds = seconds * 60 + $i; printf "%.1f", seconds }')
  user=$(sed -n 's/.*User time (seconds): //p' "$work/time.txt")
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
  name="$source"; [[ "$source" == "$work/readme_example.cpp" ]] && name="README example on blip/blip.hpp"
  printf '%-58s %10s %10s %12d\n' "$name" "$wall" "$user" "$((rss_kb / 1024))"
done
