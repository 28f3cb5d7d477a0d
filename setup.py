"""Build omcache: the Go engine is compiled by gopy inside build_ext.

The only C/Go extension is ``omcache._gopy._core``.  Its "source" is the Go
module under ``go/``; gopy (pinned in go/go.mod's ``tool`` directive) turns the
``go/bind`` package into a CPython extension.  The generated Python wrappers
are post-processed (strip_gopy_wrapper below): gopy's ``gc.callbacks`` hook
(a blocking Go GC while holding the GIL, twice per Python collection) and its
``os.chdir`` around loading the library are removed, and the build fails if
either pattern is not found exactly once, so a gopy upgrade cannot silently
bring them back.

The version lives in one place, ``python/omcache/__init__.py``: pyproject.toml
reads it from there, and the build writes it into the engine's copy of
go/bind (``bind.Version``).

Each step is reported on stderr with its duration (``omcache build: ...``);
``pip install -v .`` shows them as they happen (the Makefile does this).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
GO_DIR = ROOT / "go"
GO_MODULE = "github.com/omcache/omcache/go"
_VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.M)
_GO_VERSION_LINE = re.compile(r'^const Version = "[^"]*"$', re.M)


def package_version() -> str:
    """omcache.__version__, read from python/omcache/__init__.py (the one place it lives)."""
    m = _VERSION_LINE.search((ROOT / "python" / "omcache" / "__init__.py").read_text())
    if not m:
        raise RuntimeError("python/omcache/__init__.py has no __version__ line")
    return m.group(1)


def progress(msg: str) -> None:
    """Say what the build is doing (stderr: pip shows it with -v, and in its error report)."""
    print(f"omcache build: {msg}", file=sys.stderr, flush=True)

# gopy's gc hook: a try/except block that appends _gopy_gc_cb to gc.callbacks.
_GC_HOOK = re.compile(
    r"^try:\n\timport gc as _gopy_gc\n.*?^\t_gopy_gc\.callbacks\.append\(_gopy_gc_cb\)\n"
    r"except Exception:\n\tpass\n",
    re.M | re.S,
)
_CHDIR_LINES = [
    re.compile(r"^cwd = os\.getcwd\(\)\n", re.M),
    re.compile(r"^currentdir = os\.path\.dirname\(os\.path\.abspath\(inspect\.getfile\(inspect\.currentframe\(\)\)\)\)\n", re.M),
    re.compile(r"^os\.chdir\(currentdir\)\n", re.M),
    re.compile(r"^os\.chdir\(cwd\)\n", re.M),
]


def strip_gopy_wrapper(text: str, name: str) -> str:
    """Remove gopy's gc.callbacks hook and its chdir dance from a generated wrapper.

    Raises RuntimeError unless every pattern matched exactly once and nothing of
    either is left afterwards.
    """
    text, n = _GC_HOOK.subn("", text)
    if n != 1:
        raise RuntimeError(f"{name}: expected one gopy gc hook block, found {n}")
    for pat in _CHDIR_LINES:
        text, n = pat.subn("", text)
        if n != 1:
            raise RuntimeError(f"{name}: expected one line matching {pat.pattern!r}, found {n}")
    for bad in ("_gopy_gc", "chdir", "RequestGC"):
        if bad in text:
            raise RuntimeError(f"{name}: {bad!r} still present after stripping")
    return text


class GopyBuildExt(build_ext):
    """build_ext that produces the Go engine with gopy instead of compiling C."""

    def build_extension(self, ext: Extension) -> None:  # noqa: D102
        if ext.name != "omcache._gopy._core":
            return super().build_extension(ext)
        go = os.environ.get("GO") or shutil.which("go")
        if not go:
            raise RuntimeError(
                "building omcache needs the Go toolchain (>= 1.24) on PATH; "
                "install Go or install a prebuilt omcache wheel"
            )
        # Build in a copy: gopy runs `go build -mod=mod`, which may rewrite go.mod,
        # and the generated package must live inside the module. One copy per
        # build process, so concurrent builds in one tree do not collide.
        started = time.monotonic()
        progress(f"building the Go engine with {go} through gopy (1-2 minutes on a first build; Go caches the rest)")
        work = Path(self.build_temp).resolve() / f"omcache-go-{os.getpid()}"
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(
            GO_DIR,
            work,
            ignore=shutil.ignore_patterns("build", "testdata", "*_test.go"),
        )
        bind_go = work / "bind" / "bind.go"
        text, n = _GO_VERSION_LINE.subn(f'const Version = "{package_version()}"', bind_go.read_text())
        if n != 1:
            raise RuntimeError(f"go/bind/bind.go: expected one 'const Version = ...' line, found {n}")
        bind_go.write_text(text)
        env = dict(os.environ)
        bindir = work / "build" / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        env["PATH"] = f"{bindir}{os.pathsep}{os.path.dirname(go)}{os.pathsep}{env.get('PATH', '')}"
        env["CGO_ENABLED"] = "1"
        env["CGO_LDFLAGS_ALLOW"] = ".*"
        env.setdefault("GOFLAGS", "-buildvcs=false")

        def run(what: str, *cmd: str) -> None:
            t = time.monotonic()
            progress(f"{what}: {' '.join(cmd)}")
            subprocess.run(cmd, cwd=work, env=env, check=True)
            progress(f"{what}: done in {time.monotonic() - t:.1f} s")

        run("building goimports (gopy needs it)", go, "build", "-o", str(bindir / "goimports"), "golang.org/x/tools/cmd/goimports")
        out = work / "build" / "_gopy"
        # OMCACHE_GO_SYMBOLS=1 keeps the Go symbol table, for perf/pprof profiles of the engine.
        symbols = "true" if os.environ.get("OMCACHE_GO_SYMBOLS") == "1" else "false"
        run(
            "generating and compiling the engine (gopy)",
            go, "tool", "gopy", "build",
            f"-output={out}", "-name=core", f"-vm={sys.executable}",
            "-dynamic-link=true", f"-symbols={symbols}", "-no-make=true",
            f"{GO_MODULE}/bind",
        )
        sos = glob.glob(str(out / "_core*.so"))
        if len(sos) != 1:
            raise RuntimeError(f"gopy produced {sos!r}, expected one _core*.so")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sos[0], target)
        for wrapper in ("bind.py", "go.py"):
            text = (out / wrapper).read_text()
            (target.parent / wrapper).write_text(strip_gopy_wrapper(text, wrapper))
        (target.parent / "__init__.py").write_text(
            '"""gopy-generated wrappers of the omcache engine (build output; do not import directly)."""\n'
        )
        shutil.rmtree(work, ignore_errors=True)
        progress(f"engine built: {target.name} ({target.stat().st_size // 1024} KiB) in {time.monotonic() - started:.0f} s")

    def copy_extensions_to_source(self) -> None:
        """For --inplace builds: copy the engine and its wrappers into python/omcache/_gopy,
        and the fast path next to them."""
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            inplace_file, regular_file = self._get_inplace_equivalent(build_py, ext)
            src_dir, dst_dir = Path(regular_file).parent, Path(inplace_file).parent
            dst_dir.mkdir(parents=True, exist_ok=True)
            wrappers = ("bind.py", "go.py", "__init__.py") if ext.name == "omcache._gopy._core" else ()
            # Replace, never overwrite in place: a running process has the
            # old library mapped, and rewriting its pages crashes it.
            for src, dst in [(Path(regular_file), Path(inplace_file))] + [
                (src_dir / n, dst_dir / n) for n in wrappers
            ]:
                tmp = dst.with_name(dst.name + ".tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)


setup(
    ext_modules=[
        Extension("omcache._gopy._core", sources=[]),
        # The single-key hot path in C over the engine's C table (go/bind/fastpath.h).
        Extension(
            "omcache._fastpath",
            sources=["python/omcache/_fastpath.c"],
            include_dirs=["go/bind"],
            depends=["go/bind/fastpath.h"],
        ),
    ],
    cmdclass={"build_ext": GopyBuildExt},
)
