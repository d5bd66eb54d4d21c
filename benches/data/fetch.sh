#!/usr/bin/env bash
# Re-fetch the functional-eval data sets from their public origin and check their sha256.
#   benches/data/fetch.sh          download into a temp dir, verify, then replace the files here
#   benches/data/fetch.sh --check  only verify the files already here (works offline)
# Needs curl and sha256sum. See README.md for where each file comes from.
set -euo pipefail
cd "$(dirname "$0")"

GH=https://raw.githubusercontent.com
HE=openai/human-eval/6d43fb980f9fee3c892a914eda09951f772ad10d
HEI=openai/human-eval-infilling/88062ff9859c875d04db115b698ed4b0f0395170
MBPP=google-research/google-research/30adf0ec5f35f9609c2f1d896005e184195d9146
CCBY=PowerGridModel/power-grid-model/c93f4d1a146ec5e936d0f11dae180f80a4487b10

# name  sha256  url
FILES=(
  "HumanEval.jsonl.gz b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef $GH/$HE/data/HumanEval.jsonl.gz"
  "LICENSE.human-eval bcba3de214851cce46ed5af42d6698044616eeace887c3231bc7a20474ab639e $GH/$HE/LICENSE"
  "HumanEval-SingleLineInfilling.jsonl.gz 1277073e7ddce163ef68598c2bca777f688a53df99422f097e37362090f88e1f $GH/$HEI/data/HumanEval-SingleLineInfilling.jsonl.gz"
  "HumanEval-MultiLineInfilling.jsonl.gz 2f341612eee1d35da1357a4f365e0c0b3ba6e2b62eb491e88aaefa4855af0349 $GH/$HEI/data/HumanEval-MultiLineInfilling.jsonl.gz"
  "HumanEval-RandomSpanInfilling.jsonl.gz b4f330d8a8ff97bf85d9def497dffcae4d741e506449386a877236e422e33e8d $GH/$HEI/data/HumanEval-RandomSpanInfilling.jsonl.gz"
  "LICENSE.human-eval-infilling bcba3de214851cce46ed5af42d6698044616eeace887c3231bc7a20474ab639e $GH/$HEI/LICENSE"
  "sanitized-mbpp.json ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9 $GH/$MBPP/mbpp/sanitized-mbpp.json"
  "LICENSE.mbpp-CC-BY-4.0 2d6d8c542906685654013c1f79b30a16181f951c055ef55ec6cb834a1ba57880 $GH/$CCBY/LICENSES/CC-BY-4.0.txt"
)

check() { # file sha256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "sha256 mismatch: $1: got $got, want $2" >&2
    return 1
  fi
}

if [ "${1:-}" = "--check" ]; then
  bad=0
  for entry in "${FILES[@]}"; do
    read -r name sum _ <<<"$entry"
    check "$name" "$sum" || bad=1
  done
  [ "$bad" = 0 ] && echo "all ${#FILES[@]} files match"
  exit "$bad"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for entry in "${FILES[@]}"; do
  read -r name sum url <<<"$entry"
  echo "fetching $name"
  curl -fsSL --retry 3 -o "$tmp/$name" "$url"
  check "$tmp/$name" "$sum"
done
for entry in "${FILES[@]}"; do
  read -r name _ _ <<<"$entry"
  mv "$tmp/$name" "$name"
done
echo "all ${#FILES[@]} files fetched and verified"
