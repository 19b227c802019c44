#!/bin/sh
# Runs examples/finetune on the digits 0-4 split: the new head must learn
# (training accuracy above 0.9), the gradient is read by name, and the
# frozen features are unchanged.  Args: FINETUNE NNCTL SOURCE_ROOT.
set -eu
fin=$1 nnctl=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnctl" --quiet replace "$src/examples/digits/digits.json" classifier.1 \
  '{"type": "Linear", "config": {"in_features": 32, "out_features": 5}}' --seed 7 \
  -o "$tmp/d5.json" >/dev/null
"$fin" "$tmp/d5.json" "$src/examples/digits/train5.safetensors" 'features.*' "$tmp/out.json" \
  > "$tmp/log"
cat "$tmp/log"
acc=$(sed -n 's/^train accuracy in the last epoch: //p' "$tmp/log")
awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }' || { echo "accuracy $acc <= 0.9"; exit 1; }
grep -q '^gradient of classifier.1.bias: present$' "$tmp/log"
"$nnctl" --quiet diff "$tmp/d5.json" "$tmp/out.json" > "$tmp/diff" || true
if grep -q 'features\.[0-9]*\.weight' "$tmp/diff"; then
  echo "frozen features changed:"; cat "$tmp/diff"; exit 1
fi
# A bad glob is one error line, exit 1.
if "$fin" "$tmp/d5.json" "$src/examples/digits/train5.safetensors" 'nope.*' "$tmp/x.json" \
    2> "$tmp/err"; then
  echo "bad glob accepted"; exit 1
fi
grep -q "matches no parameter" "$tmp/err"
test ! -e "$tmp/x.json"
echo ok
