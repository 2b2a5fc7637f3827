#!/usr/bin/env bash
# check_render.sh PNG_TO_RGB OUT.png REFERENCE.rgb -- COMMAND...
# Runs an example's render command (which writes OUT.png), then checks that its pixels equal
# the reference `distri generate` rendered (tests/capi/make_reference.cmake).
set -euo pipefail
png_to_rgb=$1 out=$2 reference=$3
shift 3
[ "$1" = "--" ] && shift
rm -f "$out"
"$@"
"$png_to_rgb" "$out" "$out.rgb"
if ! cmp -s "$out.rgb" "$reference"; then
  echo "check_render: $out differs from distri generate's image ($reference)" >&2
  exit 1
fi
echo "check_render: $out equals distri generate's image"
