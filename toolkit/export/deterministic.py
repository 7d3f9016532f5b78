"""Make exported model files depend only on the model: no call stacks, no absolute paths.

torch writes debugging records into both formats: a TorchScript archive keeps, in each
`code/*.debug_pkl`, the Python call stack of whatever traced it (absolute source paths, the CLI
or test runner that called export); an ONNX file from the dynamo exporter keeps each node's
stack trace (`pkg.torch.onnx.stack_trace`, absolute paths again) and, in its scope names, the
memory address of functions (`<function sym_min at 0x7f...>`). The same weights exported
from another checkout or another command would differ byte for byte, and the competition would
receive our paths. These functions rewrite the files without those records; everything the
runtime needs (code, constants, weights, graph, shapes) is kept as written.

TorchScript also names each compiled class once per process: a class traced or scripted a
second time in the same process is saved as `___torch_mangle_N.<Class>`, with N from a counter
that only grows, so the file would depend on what the process exported before (a partner
challenge, a test session). `fresh_jit_names()` forgets earlier classes first (what torch's own
tests do between cases), and `scrub_torchscript` renumbers the mangled names that remain (the
variants of one class inside a model) 0, 1, 2... in their order, as names only: in the code,
in the pickles' class references and in the record names.
"""

from __future__ import annotations

import contextlib
import io
import pickletools
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

from toolkit.fileio import atomic_path

# Records that hold call stacks and source paths, not anything the runtime executes.
DEBUG_SUFFIX = ".debug_pkl"
ONNX_DEBUG_KEYS = frozenset({"pkg.torch.onnx.stack_trace"})
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # `<function f at 0x7f...>`: differs every process
SERIALIZATION_ID = ".data/serialization_id"  # recomputed by the writer
MANGLE = re.compile(r"___torch_mangle_(\d+)")


def fresh_jit_names() -> None:
    """Forget the classes TorchScript compiled so far in this process (modules already made
    keep working), so the next trace or script names its classes as a fresh process would."""
    import torch

    torch._C._jit_clear_class_registry()
    torch.jit._recursive.concrete_type_store = torch.jit._recursive.ConcreteTypeStore()
    torch.jit._state._clear_class_state()


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip with `<archive>/code/` and `constants.pkl` (a plain
    torch.save zip has neither)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names)


def _renamed_pickle(data: bytes, rename) -> bytes:
    """A pickle with `rename` applied to every class reference (GLOBAL) and string; the other
    opcodes are copied as they are (no FRAME opcodes: torch writes protocol 2)."""
    ops = list(pickletools.genops(data))
    out = bytearray()
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "GLOBAL":
            module, name = arg.split(" ", 1)
            out += b"c" + rename(module).encode() + b"\n" + rename(name).encode() + b"\n"
        elif op.name in ("BINUNICODE", "SHORT_BINUNICODE") and MANGLE.search(arg):
            text = rename(arg).encode()
            size = struct.pack("<I", len(text)) if op.name == "BINUNICODE" else bytes([len(text)])
            out += data[pos : pos + 1] + size + text
        elif op.name == "FRAME":
            raise ValueError("framed pickle (protocol 4+): not written by torch.jit.save")
        else:
            out += data[pos:end]
    return bytes(out)


def _canonical_records(records: dict[str, bytes]) -> dict[str, bytes]:
    """Records with mangled class names renumbered 0, 1, 2... in the order of their numbers."""
    texts = [name + (data.decode("latin-1") if _names_inside(name) else "")
             for name, data in records.items()]  # fmt: skip
    found = {int(m) for text in texts for m in MANGLE.findall(text)}
    order = {number: rank for rank, number in enumerate(sorted(found))}
    if all(order[n] == n for n in order):
        return records

    def rename(text: str) -> str:
        return MANGLE.sub(lambda m: f"___torch_mangle_{order[int(m.group(1))]}", text)

    out = {}
    for name, data in records.items():
        if name.endswith(".pkl"):
            data = _renamed_pickle(data, rename)
        elif name.startswith("code/"):
            data = rename(data.decode("utf-8")).encode("utf-8")
        out[rename(name)] = data
    return out


def _names_inside(record: str) -> bool:
    """Records that may name classes: TorchScript code and pickles (not tensor data)."""
    return record.startswith("code/") or record.endswith(".pkl")


def scrub_torchscript(path: Path) -> bool:
    """Rewrite a TorchScript archive without its debug records and with canonical class
    names (through torch's own writer, so the layout torch.jit.load expects is kept; the
    archive folder is always `archive/`, not the file's name). Returns whether it changed."""
    import torch

    reader = torch._C.PyTorchFileReader(str(path))
    names = reader.get_all_records()
    records = {
        n: reader.get_record(n)
        for n in names
        if not n.endswith(DEBUG_SUFFIX) and n != SERIALIZATION_ID
    }
    del reader
    records = _canonical_records(records)
    buffer = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(buffer)
    for name, data in records.items():
        writer.write_record(name, data, len(data))
    writer.write_end_of_file()
    before = path.read_bytes()
    after = buffer.getvalue()
    if after == before:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(after)
    return True


def _scrub_graph(graph) -> int:
    """Drop stack traces and memory addresses from the nodes' metadata (here and in
    subgraphs); the number of entries changed."""
    changed = 0
    for node in graph.node:
        keep = []
        for prop in node.metadata_props:
            if prop.key in ONNX_DEBUG_KEYS:
                changed += 1
                continue
            value = ADDRESS.sub("", prop.value)
            changed += value != prop.value
            keep.append((prop.key, value))
        del node.metadata_props[:]
        for key, value in keep:
            node.metadata_props.add(key=key, value=value)
        for attribute in node.attribute:
            if attribute.HasField("g"):
                changed += _scrub_graph(attribute.g)
            for sub in attribute.graphs:
                changed += _scrub_graph(sub)
    return changed


def scrub_onnx(path: Path) -> bool:
    """Rewrite an ONNX file without its nodes' stack traces and memory addresses (graph,
    functions, subgraphs). Returns whether anything changed."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    removed = _scrub_graph(model.graph)
    for function in model.functions:
        removed += _scrub_graph(function)
    if not removed:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(model.SerializeToString(deterministic=True))
    return True


def scrub_model_files(folder: Path) -> list[Path]:
    """Scrub every ONNX file and TorchScript archive under `folder`; the ones changed."""
    changed = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        if path.suffix == ".onnx":
            done = scrub_onnx(path)
        elif is_torchscript(path):
            done = scrub_torchscript(path)
        else:
            continue
        if done:
            changed.append(path)
    return changed


@contextlib.contextmanager
def deterministic_models(folder: Path) -> Iterator[Path]:
    """Model files written into `folder` inside the block are named as by a fresh process and,
    at its end, scrubbed of call stacks and paths."""
    fresh_jit_names()
    yield folder
    scrub_model_files(folder)
