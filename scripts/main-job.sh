#!/bin/sh
# The main job: set up, build, then inspect, run, change and picture the
# bundled digits model with nnctl.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh build
# Its own build directory without the test suite, so it builds in seconds.
NN_BUILD_DIR=build-main scripts/build.sh -Dtests=false >/dev/null
nnctl=build-main/tools/nnctl/nnctl
model=examples/digits/digits.json
out=build-main/out
mkdir -p "$out"

step () { printf '\n== %s\n$ %s\n' "$1" "$2"; }

step "1. The model, as PyTorch prints it" "nnctl show $model"
$nnctl show "$model"

step "2. Run it on the bundled samples (predictions and accuracy)" \
  "nnctl run $model    # samples.safetensors beside the model: inputs and labels"
$nnctl run "$model"

head='{"type": "Linear", "config": {"in_features": 32, "out_features": 5}}'
step "3. Surgery: a new 5-class head, shape-checked, written atomically" \
  "nnctl replace $model classifier.1 '$head' --seed 7 -o $out/digits5.json"
$nnctl replace "$model" classifier.1 "$head" --seed 7 -o "$out/digits5.json"
$nnctl diff "$model" "$out/digits5.json"
$nnctl run "$out/digits5.json" --random 2,1,8,8 --seed 1 --topk 2

step "4. Capture an activation with a forward hook" \
  "nnctl run $model --hook features.2 --save-activations $out/relu1.safetensors"
$nnctl run "$model" --hook features.2 --save-activations "$out/relu1.safetensors" | grep -v '^sample'

step "5. A Graphviz picture of the module tree and dataflow" "nnctl dot $model -o $out/digits.dot"
$nnctl dot "$model" -o "$out/digits.dot"
dot -Tsvg "$out/digits.dot" -o "$out/digits.svg"
echo "rendered $out/digits.svg"

step "6. Fine-tune the new head on digits 0-4, the features frozen" \
  "nnctl finetune $out/digits5.json --data examples/digits/train5.safetensors --val examples/digits/val5.safetensors --freeze 'features.*' --epochs 5 --batch-size 32 --lr 0.1 --momentum 0.9 --seed 1 -o $out/digits5-tuned.json"
# The held-out 0-4 images as the bundled samples, so `run` reports accuracy.
cp examples/digits/val5.safetensors "$out/samples.safetensors"
printf 'before: '; $nnctl run "$out/digits5.json" | tail -n 1
$nnctl finetune "$out/digits5.json" --data examples/digits/train5.safetensors \
  --val examples/digits/val5.safetensors --freeze 'features.*' --epochs 5 \
  --batch-size 32 --lr 0.1 --momentum 0.9 --seed 1 -o "$out/digits5-tuned.json"
printf 'after:  '; $nnctl run "$out/digits5-tuned.json" | tail -n 1

cat <<TRY

== What to try next
  $nnctl modules $model                     # flattened indices (#N) and paths
  $nnctl summary $model --input-shape 1,1,8,8
  $nnctl get $model '#2'                    # one module: text, config, params
  $nnctl plugins Conv2d                     # a layer type's schema
  $nnctl insert $model features '{"type": "Dropout"}' --index -1 -o $out/d.json
  $nnctl export resnet18 -o $out/resnet18.json   # needs python3-torch
  $nnctl --help                             # every command, with examples
TRY
