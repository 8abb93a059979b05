"""Open a GGUF with llama.cpp so that a bad file is a one-line error, never a dead process.

llama.cpp is C++: a GGUF it cannot handle may segfault or abort inside ``Llama(...)`` or the
first decode, which takes an lm-eval run (or a pytest session) down with no Python error and
nothing saved. So before a file is first loaded in process, a child process loads it with the
same settings and decodes a few tokens; only if the child survives does this process load
it. The verdict is cached per file (path, size, mtime), llama-cpp-python version and
settings, so the probe costs one extra load, once (about a second for the embedded model).
LoRA adapter GGUFs are put on trial the same way: the child loads each beside the model and
decodes with it active.

On some hosts llama.cpp's AMX kernels die: it packs a quantized model's weights for AMX as it
loads them, and the first matmul dies in ``ldtilecfg`` (SIGSEGV; ggml-org/llama.cpp#20824,
closed upstream without a fix). The cause is the compiler, not the host: GCC 12's
``_tile_loadconfig`` gives its asm an 8-byte operand, so the stores that fill the rest of the
64-byte tile config are dropped as dead and ``ldtilecfg`` reads stack garbage (seen in the
disassembly of llama-cpp-python's from-source build with Debian 12's GCC 12.2, as here).
``patches/llama.cpp/amx-tilecfg.patch`` fixes it in slmbench's patched library. So on a host
that advertises AMX, the first load of any GGUF is preceded, once per host and library, by a
trial in a child process: the embedded model (quantized, so AMX takes it) with llama.cpp's
extra buffer types (``use_extra_bufts``: AMX, and weight repacking) and, if that dies, without
them. If only the second lives, every load here leaves them off, with a warning (quantized
models run slower without them, but they run).

Context is capped at what the model was trained with (``<arch>.context_length`` in the
GGUF). Past it RoPE positions were never seen in training, and llama.cpp only warns
("n_ctx_seq > n_ctx_train -- possible training context overflow"), so the cap is applied
here and said in the log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.child import llama_failure
from harness.errors import SlmbenchError
from harness.hashing import sha256_json
from harness.paths import cache_dir

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 600
# llama.cpp's own account of a failure, among its log lines and an abort's backtrace.
# What the probe decodes: enough to run every layer's kernels once.
_PROBE_TEXT = b"The gNB schedules the UE on the PDSCH."


def trained_context(path: str | os.PathLike) -> int | None:
    """The context length the model was trained with, from the GGUF metadata (None if absent)."""
    from harness.artefacts.gguf_header import read_gguf_summary

    return read_gguf_summary(Path(path)).context_length


def capped_n_ctx(path: str | os.PathLike, requested: int) -> int:
    """``requested`` context, or the trained context when it asks for more (or for 0)."""
    return _cap(requested, trained_context(path), Path(path).name)


def _cap(requested: int, trained: int | None, name: str) -> int:
    if trained is None:
        return requested
    if requested <= 0:
        return trained
    if requested > trained:
        log.warning("llama-cpp: n_ctx=%d is more than %s was trained with (%d); using %d",
                    requested, name, trained, trained)
        return trained
    return requested


def _host_marker(verdict: str) -> Path:
    """Where this host's verdict on llama.cpp's extra buffer types is kept ("on" or "off").

    Per library (version and LLAMA_CPP_LIB_PATH) and CPU: another build may have fixed it.
    """
    import llama_cpp

    key = sha256_json([llama_cpp.__version__, os.environ.get("LLAMA_CPP_LIB_PATH") or "",
                       _cpu_model()])[:16]
    return cache_dir() / "llama_cpp_probes" / f"extra_bufts-{key}.{verdict}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name")), "")
    except OSError:
        return ""


def extra_bufts_off() -> bool:
    """Whether llama.cpp loads on this host must leave its extra buffer types (AMX) off.

    Settled by a trial the first time it is asked on a host that advertises AMX (a second or
    two, in child processes), then read from the cache.
    """
    if not _advertises_amx():
        return False
    if _host_marker("off").is_file():
        return True
    if _host_marker("on").is_file():
        return False
    from harness.artefacts.embedded import gguf_path

    trial, what = gguf_path(), "the embedded model (a host check)"
    settings = {"n_ctx": 256, "n_threads": 1, "verbose": False}
    crash = _run_probe(trial, settings, [], what)
    if crash.returncode >= 0:  # it ran, or failed in a way AMX does not explain
        verdict = "on"
    elif _run_probe(trial, {**settings, "use_extra_bufts": False}, [], what).returncode == 0:
        verdict = "off"
        log.warning("llama-cpp: llama.cpp dies (%s) in its AMX kernels on this CPU and runs "
                    "without them (ggml-org/llama.cpp#20824; a GCC 12 build, whose "
                    "_tile_loadconfig drops the tile shapes: scripts/"
                    "build_llama_cpp_lora_patches.sh builds a library with the fix): every "
                    "llama.cpp load on this host leaves its extra buffer types off, so quantized "
                    "models run slower (delete %s to try them again)",
                    llama_failure(crash), _host_marker("off"))
    else:  # not AMX's doing: each load's own probe will say what is wrong
        return False
    _host_marker(verdict).parent.mkdir(parents=True, exist_ok=True)
    _host_marker(verdict).touch()
    return verdict == "off"


def extra_bufts_record() -> dict[str, bool]:
    """What a record of a llama.cpp measurement says of the extra buffer types: only when off."""
    return {"extra_bufts": False} if extra_bufts_off() else {}


def llama_cpp_record() -> dict:
    """What a llama.cpp measurement's record says of the library it ran.

    Stock or which of slmbench's patches were on, and whether this host's crashing AMX kept
    the extra buffer types off: two measurements differ by these as much as by the model.
    """
    from harness.models.llama_cpp_patches import llama_cpp_build

    return {**llama_cpp_build(), **extra_bufts_record()}


def _advertises_amx() -> bool:
    import llama_cpp

    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode("utf-8", "replace")


@contextmanager
def _model_params(**fields: Any) -> Iterator[None]:
    """``llama_cpp.Llama`` with these model parameters set: it takes no keyword for them.

    ``Llama.__init__`` builds its parameters from ``llama_model_default_params()`` and loads
    the model before returning, so that function is wrapped for the duration of the call.
    """
    import llama_cpp.llama_cpp as bindings

    default = bindings.llama_model_default_params

    def with_fields():
        params = default()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    bindings.llama_model_default_params = with_fields
    try:
        yield
    finally:
        bindings.llama_model_default_params = default


def _new_llama(path: str | os.PathLike, settings: dict[str, Any]):
    """``llama_cpp.Llama(path, **settings)``, where ``use_extra_bufts`` may be among them."""
    import llama_cpp

    settings = dict(settings)
    fields = {"use_extra_bufts": settings.pop("use_extra_bufts")} if (
        "use_extra_bufts" in settings) else {}
    with _model_params(**fields):
        return llama_cpp.Llama(model_path=str(path), **settings)


def _file_id(path: Path) -> list[Any]:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _probe_key(path: Path, settings: dict[str, Any], adapters: list[Path]) -> str:
    import llama_cpp

    from harness.models.llama_cpp_patches import llama_cpp_env

    # another library (LLAMA_CPP_LIB_PATH) or one of slmbench's patches switched on is another
    # llama.cpp: its verdict is its own; stock keys stay what they were
    env = llama_cpp_env()
    return sha256_json([*_file_id(path), llama_cpp.__version__, sorted(settings.items()),
                        *([_file_id(a) for a in adapters] if adapters else []),
                        *([sorted(env.items())] if env else [])])[:24]


def _probe_argv(path: Path, settings: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "harness.models.llama_cpp_load", str(path),
            json.dumps(settings)]


def probe(path: str | os.PathLike, settings: dict[str, Any],
          adapters: Sequence[str | os.PathLike] = ()) -> None:
    """Load ``path`` (and its LoRA ``adapters``) in a child process first; raise if it dies.

    Raises:
        SlmbenchError: the child crashed, failed or hung, naming the file and the reason.
    """
    path, adapter_paths = Path(path), [Path(a) for a in adapters]
    marker = cache_dir() / "llama_cpp_probes" / f"{_probe_key(path, settings, adapter_paths)}.ok"
    if marker.is_file():
        return
    what = f"GGUF {path}" + (f" with LoRA adapters {', '.join(a.name for a in adapter_paths)}"
                             if adapter_paths else "")
    proc = _run_probe(path, settings, adapter_paths, what)
    if proc.returncode != 0:
        raise SlmbenchError(f"llama-cpp: cannot load {what}: {llama_failure(proc)}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _run_probe(path: Path, settings: dict[str, Any], adapters: list[Path],
               what: str) -> subprocess.CompletedProcess:
    argv = _probe_argv(path, settings)
    if adapters:
        argv.append(json.dumps([str(a) for a in adapters]))
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SlmbenchError(f"llama-cpp: loading {what} did not finish in "
                            f"{PROBE_TIMEOUT_S} s") from None


def open_llama(path: str | os.PathLike, *, n_ctx: int, isolate: bool = True,
               adapters: Sequence[str | os.PathLike] = (), **settings: Any):
    """``llama_cpp.Llama`` for ``path``, with context capped and (by default) probed first.

    Args:
        path: A GGUF file (checked to be one before llama.cpp sees it).
        n_ctx: Requested context; capped at the trained context, 0 means the trained one.
        isolate: Probe the load in a child process first. Callers that already run in a
            throwaway process of their own (the bench worker) pass False. Either way the
            host's verdict on llama.cpp's extra buffer types applies (:func:`extra_bufts_off`).
        adapters: LoRA adapter GGUFs the probe loads and decodes with too; load them into
            the returned model with :func:`load_adapters`.
        **settings: Further ``Llama`` keyword arguments (JSON-serialisable).

    Raises:
        SlmbenchError: not a GGUF, or llama.cpp refused or crashed on it.
    """
    from harness.artefacts.gguf_header import read_gguf_summary

    path = Path(path)
    summary = read_gguf_summary(path)  # one-line error for a missing, foreign or truncated file
    settings = {**settings, "n_ctx": _cap(int(n_ctx), summary.context_length, path.name)}
    if extra_bufts_off():
        settings["use_extra_bufts"] = False
    if isolate:
        probe(path, settings, adapters)
    try:
        return _new_llama(path, settings)
    except (ValueError, RuntimeError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SlmbenchError(f"llama-cpp: cannot load GGUF {path}: {reason}") from err


def load_adapters(llm: Any, paths: Sequence[str | os.PathLike]) -> list[Any]:
    """Load LoRA adapter GGUFs beside ``llm``'s model; none is active until :func:`activate`.

    llama.cpp frees them with the model, so the handles need no cleanup of their own.

    Raises:
        SlmbenchError: llama.cpp refused one (wrong architecture, names or shapes).
    """
    import llama_cpp

    handles = []
    for path in paths:
        handle = llama_cpp.llama_adapter_lora_init(llm._model.model, str(path).encode("utf-8"))
        if not handle:  # a NULL pointer: llama.cpp said why in its log
            raise SlmbenchError(f"llama-cpp: llama.cpp refused LoRA adapter {path} (its "
                                "architecture, tensor names or shapes do not fit the model)")
        handles.append(handle)
    return handles


def activate(llm: Any, handle: Any | None, scale: float = 1.0) -> None:
    """Make ``handle`` the one active adapter of ``llm``'s context (None: the plain model).

    Cached keys and values were computed under the previous adapter, so the caller must not
    reuse them (``llm.reset()``).
    """
    import ctypes

    import llama_cpp

    if handle is None:
        status = llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, None, 0, None)
    else:
        handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
        scales = (ctypes.c_float * 1)(scale)
        status = llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, handles, 1, scales)
    if status != 0:
        raise SlmbenchError(f"llama-cpp: llama.cpp could not set the LoRA adapter "
                            f"(status {status})")


def switch(llm: Any, handle: Any | None) -> None:
    """Everything a switch of adapter costs: set it, then drop the cached keys and values.

    They were computed under the previous adapter and would be reused for a shared prefix.
    """
    activate(llm, handle)
    llm.reset()


def _probe_main(path: str, settings_json: str, adapters_json: str = "[]") -> None:
    # Verbose, so that an assertion that aborts llama.cpp is on stderr for the parent to quote.
    llm = _new_llama(path, {**json.loads(settings_json), "verbose": True})
    tokens = llm.tokenize(_PROBE_TEXT, add_bos=True)[: max(2, min(16, llm.n_ctx() - 1))]
    llm.eval(tokens)
    adapters = json.loads(adapters_json)
    try:
        handles = load_adapters(llm, adapters)
    except SlmbenchError as err:
        print(str(err).removeprefix("llama-cpp: "), file=sys.stderr, flush=True)
        os._exit(1)
    for handle in handles:
        switch(llm, handle)
        llm.eval(tokens)
    llm.close()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: only the load and the decode are on trial


if __name__ == "__main__":
    _probe_main(*sys.argv[1:4])
