#!/usr/bin/env bash
# Installs what bigbatch needs to build, test and run its default job on Debian 12 (as root,
# or through sudo when it is there). Safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  # libdnnl-dev's CMake config looks for OpenCL, which the package only recommends.
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libfmt-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  fortunes-min fortunes          # the default job's corpus
  dataset-fashion-mnist          # the vision configs' data (IDX files)
  libstb-dev                     # stb_image: PNG/JPEG image folders
  nodejs                         # runs onnxruntime-node in the ONNX export test
  libonnx-dev libprotobuf-dev    # ONNX's protobuf definitions for `bigbatch export`
  libsentencepiece-dev sentencepiece  # SentencePiece tokenizers; spm_train for their test
  jargon-text                    # text for the GPT-2 tokenizer test and the README walkthrough
  clang libclang-rt-14-dev libomp-dev  # libFuzzer harnesses (fuzz/) built with clang
  chromium                       # renders `bigbatch report` pages in the report test
  libopenmpi-dev openmpi-bin     # data parallelism (mpirun) and its tests
  iproute2                       # the two-host MPI test: network namespaces joined by veth
)

bash "$(dirname "$0")/apt_install.sh" "${packages[@]}"

# The ONNX export test runs the exported model in onnxruntime-node (its CPU binary ships
# inside the npm package; the install script only fetches optional CUDA files, so skip it).
command -v npm >/dev/null || bash "$(dirname "$0")/apt_install.sh" npm
bash "$(dirname "$0")/setup_onnx_node.sh"
bash "$(dirname "$0")/setup_node_tools.sh"
bash "$(dirname "$0")/setup_report_browser.sh"
bash "$(dirname "$0")/setup_chat_template_node.sh"
# The GGUF export test runs the exported files in llama.cpp (node-llama-cpp, prebuilt CPU).
bash "$(dirname "$0")/setup_gguf_node.sh"
