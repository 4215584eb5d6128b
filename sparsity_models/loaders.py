"""Checkpoint loaders: named float32 weight matrices from each checkpoint file format.

Every loader returns :class:`Checkpoint` ``tensors``: layer name -> float32 weight in the
torch layout (``[M, K]`` for a linear layer, ``[M, C, R, S]`` for a convolution), plus
the format's own note per tensor (e.g. ``Q4_1`` for a quantized GGUF tensor). The heavy
format packages (``onnx``, ``gguf``, ``h5py``) are imported inside the loader that needs
them (extras ``bitloop[onnx]``, ``bitloop[gguf]``, ``bitloop[keras]``).

=================  ====================================  =================================
format             layer names                           layout conversion
=================  ====================================  =================================
torch state dict   module names (``features.0.0``)       none
safetensors        module names                          none
ONNX initializers  the node's initializer name           MatMul ``[K, M]`` -> ``[M, K]``;
                   without ``.weight``                   Gemm ``transB=0`` likewise
GGUF               llama.cpp names (``blk.0.attn_q``)    dequantized; GGUF lists dims
                                                         fastest first, numpy reverses
CTranslate2        ``decoder/layer_0/ffn/linear_0``      fp16/int8 -> float32 (int8 with
                                                         its ``weight_scale``)
Keras ``.h5``      group path (``block1/layers/conv2d``) kernel ``[R, S, C, M]`` ->
                                                         ``[M, C, R, S]``; dense
                                                         ``[K, M]`` -> ``[M, K]``
=================  ====================================  =================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workloads.yamlio import InputError


@dataclass
class Checkpoint:
    """Weight matrices of one checkpoint file.

    Attributes:
        path: the file.
        format: ``torch`` | ``safetensors`` | ``onnx`` | ``gguf`` | ``ct2`` | ``keras``.
        tensors: layer name -> float32 array (torch layout).
        notes: layer name -> how the stored tensor was encoded (e.g. ``Q4_1``, ``float16``).
        names: layer name -> stored tensor name, where it is not ``<layer>.weight``.
    """

    path: Path
    format: str
    tensors: dict[str, np.ndarray]
    notes: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def tensor_name(self, layer: str) -> str:
        return self.names.get(layer, f"{layer}.weight")


def _is_layer_weight(name: str, array: np.ndarray) -> bool:
    """Rank-2/4 weights that are not embedding tables or norms."""
    low = name.lower()
    if array.ndim not in (2, 4):
        return False
    if "norm" in low or "embed_tokens" in low or "token_embd" in low or "embeddings/weight" in low:
        return False
    return not ("embeddings" in low and "patch_embeddings" not in low)


def _need(module: str, extra: str, path: Path) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(path, None, f"reading this format needs the '{module}' package: pip install 'bitloop[{extra}]'") from None


def load_torch(path: str | Path) -> Checkpoint:
    """A torch state dict (``.pth``/``.pt``/``.bin``), loaded with ``weights_only=True``."""
    import torch

    p = Path(path)
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable files are user input problems
        raise InputError(p, None, f"cannot read a torch state dict ({exc})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise InputError(p, None, f"expected a state dict (name -> tensor), got {type(obj).__name__}")
    out = {}
    for name, t in obj.items():
        if isinstance(t, torch.Tensor) and name.endswith(".weight") and t.is_floating_point():
            arr = t.detach().float().numpy()
            if _is_layer_weight(name, arr):
                out[name[: -len(".weight")]] = arr
    return Checkpoint(p, "torch", out)


def load_safetensors(path: str | Path) -> Checkpoint:
    """A ``.safetensors`` file."""
    from safetensors.numpy import load_file

    p = Path(path)
    try:
        raw = load_file(str(p))
    except Exception as exc:  # noqa: BLE001
        raise InputError(p, None, f"cannot read safetensors file ({exc})") from None
    out = {k[: -len(".weight")]: v.astype(np.float32) for k, v in raw.items()
           if k.endswith(".weight") and v.dtype.kind == "f" and _is_layer_weight(k, v)}
    return Checkpoint(p, "safetensors", out)


def load_onnx(path: str | Path, model: Any = None) -> Checkpoint:
    """Weights of the Conv, Gemm and MatMul nodes of an ONNX model (initializers only)."""
    onnx = _need("onnx", "onnx", Path(path))
    from onnx import numpy_helper

    p = Path(path)
    if model is None:
        try:
            model = onnx.load(str(p))
        except Exception as exc:  # noqa: BLE001
            raise InputError(p, None, f"cannot read ONNX model ({exc})") from None
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    for node in model.graph.node:
        w = onnx_weight(node, inits, numpy_helper.to_array)
        if w is not None:
            layer = onnx_weight_name(node, inits)
            out[layer] = w
            names[layer] = next(i for i in node.input[:2] if i in inits)
    return Checkpoint(p, "onnx", out, names=names)


def onnx_weight_name(node: Any, inits: dict[str, Any]) -> str:
    """Layer name of an ONNX node's weight: its initializer name without ``.weight``."""
    name = next(i for i in node.input[:2] if i in inits)
    return name[: -len(".weight")] if name.endswith(".weight") else name


def onnx_weight(node: Any, inits: dict[str, Any], to_array: Callable) -> np.ndarray | None:
    """The float32 weight of a Conv/Gemm/MatMul node in torch layout, or None (no initializer)."""
    if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits:
        return to_array(inits[node.input[1]]).astype(np.float32)
    if node.op_type not in ("Gemm", "MatMul") or len(node.input) < 2:
        return None
    a, b = node.input[0] in inits, node.input[1] in inits
    if a == b:
        return None
    w = to_array(inits[node.input[1] if b else node.input[0]]).astype(np.float32)
    if w.ndim != 2:
        return None
    attrs = {at.name: at.i for at in node.attribute}
    if node.op_type == "Gemm":
        trans = attrs.get("transB", 0) if b else attrs.get("transA", 0)
        # Y = A B: B stored [K, M] unless transB; a weight in A is [M, K] unless transA.
        return np.ascontiguousarray(w if trans == (1 if b else 0) else w.T)
    return np.ascontiguousarray(w.T if b else w)


def load_gguf(path: str | Path) -> Checkpoint:
    """A GGUF file (llama.cpp): every tensor dequantized to float32 with the ``gguf`` package.

    Quantized tensors (Q4_1, Q8_0, ...) keep only their quantized values: statistics of
    their bits describe the dequantized 4/8-bit grid, not the original float weights
    (``notes`` names each tensor's type).
    """
    gguf = _need("gguf", "gguf", Path(path))
    from gguf.quants import dequantize

    p = Path(path)
    try:
        reader = gguf.GGUFReader(str(p))
    except Exception as exc:  # noqa: BLE001
        raise InputError(p, None, f"cannot read GGUF file ({exc})") from None
    out, notes = {}, {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(list(t.shape)))
        if len(shape) not in (2, 4) or not t.name.endswith(".weight"):
            continue
        arr = np.asarray(dequantize(t.data, t.tensor_type), np.float32).reshape(shape)
        if _is_layer_weight(t.name, arr) or t.name == "output.weight":
            out[t.name[: -len(".weight")]] = arr
            notes[t.name[: -len(".weight")]] = t.tensor_type.name
    return Checkpoint(p, "gguf", out, notes)


_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}   # CTranslate2 DataType ids


def read_ct2(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin`` (binary version >= 3), unconverted.

    Layout (little endian): version u32, spec name, revision u32, count u32, then per
    variable: name, rank u8, dims u32 x rank, dtype u8, byte count u32, bytes. Strings
    are a u16 length (including a trailing NUL) and the bytes. bfloat16 is not supported.
    """
    p = Path(path)
    data = p.read_bytes()
    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise InputError(p, None, "truncated CTranslate2 model.bin")
        value = struct.unpack_from("<" + fmt, data, pos)
        pos += size
        return value[0] if len(value) == 1 else value

    def string() -> str:
        nonlocal pos
        n = take("H")
        s = data[pos: pos + n].rstrip(b"\0").decode()
        pos += n
        return s

    version = take("I")
    if version < 3:
        raise InputError(p, None, f"expected a CTranslate2 model.bin of binary version >= 3, got {version}")
    string()
    take("I")
    out = {}
    for _ in range(take("I")):
        name = string()
        dims = [take("I") for _ in range(take("B"))]
        dtype_id, nbytes = take("B"), take("I")
        if dtype_id not in _CT2_DTYPES:
            raise InputError(p, name, f"unsupported CTranslate2 data type id {dtype_id}")
        out[name] = np.frombuffer(data, _CT2_DTYPES[dtype_id], count=nbytes // np.dtype(_CT2_DTYPES[dtype_id]).itemsize,
                                  offset=pos).reshape(dims)
        pos += nbytes
    return out


def load_ct2(path: str | Path) -> Checkpoint:
    """Linear weights of a CTranslate2 ``model.bin`` (``.../weight`` variables, fp16/fp32/int8)."""
    p = Path(path)
    raw = read_ct2(p)
    out, notes = {}, {}
    for name, arr in raw.items():
        if not name.endswith("/weight") or arr.ndim != 2 or "embeddings" in name:
            continue
        layer = name[: -len("/weight")]
        w = arr.astype(np.float32)
        if arr.dtype == np.int8:   # int8 weights are stored with a per-row scale: w = q / scale
            w = w / raw[f"{layer}/weight_scale"].astype(np.float32).reshape(-1, 1)
        out[layer] = w
        notes[layer] = str(arr.dtype)
    return Checkpoint(p, "ct2", out, notes)


def load_keras_h5(path: str | Path) -> Checkpoint:
    """Conv and dense kernels of a Keras weights file (Keras 3 ``.weights.h5`` or Keras 2 ``.h5``)."""
    h5py = _need("h5py", "keras", Path(path))
    p = Path(path)
    found: list[tuple[str, np.ndarray]] = []

    def visit(name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Dataset) or obj.ndim not in (2, 4):
            return
        if name.endswith("/vars/0"):        # Keras 3: <layer path>/vars/0 is the kernel
            found.append((name[: -len("/vars/0")], obj[()]))
        elif name.endswith("kernel:0") or name.endswith("/kernel"):   # Keras 2
            found.append((name.rsplit("/", 1)[0], obj[()]))

    try:
        with h5py.File(str(p), "r") as fh:
            fh.visititems(visit)
    except OSError as exc:
        raise InputError(p, None, f"cannot read HDF5 file ({exc})") from None
    out = {}
    for name, k in found:
        k = np.asarray(k, np.float32)
        out[name] = np.ascontiguousarray(k.transpose(3, 2, 0, 1) if k.ndim == 4 else k.T)
    return Checkpoint(p, "keras", out)


LOADERS: dict[str, Callable[[Path], Checkpoint]] = {
    ".pth": load_torch, ".pt": load_torch, ".safetensors": load_safetensors, ".onnx": load_onnx,
    ".gguf": load_gguf, ".h5": load_keras_h5,
}


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load by file type: ``.pth``/``.pt``, ``.safetensors``, ``.onnx``, ``.gguf``, ``.h5``,
    a CTranslate2 ``model.bin`` (or its folder) or a torch ``.bin``."""
    p = Path(path)
    if p.is_dir() and (p / "model.bin").is_file():
        p = p / "model.bin"
    if not p.is_file():
        raise InputError(p, None, "checkpoint file not found")
    if p.suffix == ".bin":
        with p.open("rb") as fh:
            head = fh.read(4)
        return load_ct2(p) if head[:4] in (struct.pack("<I", v) for v in range(3, 10)) else load_torch(p)
    loader = LOADERS.get(p.suffix.lower())
    if loader is None:
        raise InputError(p, None, f"unknown checkpoint type; expected one of {sorted(LOADERS)} or a CTranslate2 model.bin")
    return loader(p)
