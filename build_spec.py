"""The one-folder desktop build: `python build_spec.py [--archive]` → dist/position-sync/.

Run it with Python, never as `pyinstaller build_spec.py`: PyInstaller would freeze this file as
the app (STYLE.md traps). As a script it copies itself to build/position-sync.spec and hands
that to PyInstaller, which executes the same file again as a spec (SPECPATH among its globals):
then `_freeze()` below describes the bundle. After the build the script checks the bundle
(`check_bundle`, also used by tests/frozen) and prints its size.

What goes in:
- the CLI `app.cli.main:main` as the executable (`position-sync`, `.exe` on Windows), the same
  console program as the installed script, so `sync`, `status` and the window all work from it;
- `migrations/` and `resources/` as data under the bundle's `_internal/` (`sys._MEIPASS`), where
  `app.db.migrate.migrations_dir()` and `app.ui.resources.resources_dir()` look when frozen;
- every module the migration scripts import (they are loaded from files at run time, so
  PyInstaller cannot see them): found by reading the scripts;
- Qt: only the modules the app imports (QtCore, QtGui, QtWidgets) and the plugins in
  QT_PLUGINS; never all of PySide6; no translations (the app is English only); no UPX.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import platform
import shutil
import sys
import tarfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

NAME = "position-sync"

# PyInstaller runs the spec copy with SPECPATH = build/; run as a script, this file is the root.
_SPECPATH = globals().get("SPECPATH")
ROOT = Path(_SPECPATH).resolve().parent if _SPECPATH else Path(__file__).resolve().parent
SPEC = ROOT / "build" / f"{NAME}.spec"
WORKPATH = ROOT / "build" / "pyinstaller"
DISTPATH = ROOT / "dist"

# PySide6 extension modules the bundle may hold. The app imports the first three; QtSvg is
# allowed for the SVG icon (its library comes in with the svg plugins either way). A new Qt
# import must be added here on purpose: check_bundle fails the build otherwise.
QT_MODULES = frozenset({"QtCore", "QtGui", "QtWidgets", "QtSvg"})

# Qt plugins by folder; names without `lib` prefix and file extension (Linux, Windows, macOS).
QT_PLUGINS: dict[str, frozenset[str]] = {
    # X11 (and XWayland on Wayland desktops), Windows, macOS; offscreen for tests and servers.
    "platforms": frozenset({"qxcb", "qwindows", "qcocoa", "qoffscreen", "qminimal"}),
    "xcbglintegrations": frozenset({"qxcb-glx-integration", "qxcb-egl-integration"}),
    # resources/icon.svg as the window icon; .ico/.icns for the platforms' own icon files.
    "iconengines": frozenset({"qsvgicon"}),
    "imageformats": frozenset({"qsvg", "qico", "qicns"}),
    # Dead keys / compose sequences and input methods in the text fields (notes, filters).
    "platforminputcontexts": frozenset(
        {"composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"}
    ),
    # The native look on Windows and macOS (Linux uses Fusion, built in).
    "styles": frozenset({"qwindowsvistastyle", "qmodernwindowsstyle", "qmacstyle"}),
}
# Each platform's window-system plugin, which must be present in a bundle built there.
NATIVE_PLATFORM = {"linux": "qxcb", "win32": "qwindows", "darwin": "qcocoa"}

# Never part of the app, though something in the environment could drag them in: other Qt
# bindings (qasync probes them), test and type-check tools, pandas (ib_insync's optional util.df).
EXCLUDES = [
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6.QtNetwork",
    "PySide6.QtDBus",
    "tkinter",
    "_tkinter",
    "pandas",
    "matplotlib",
    "IPython",
    "hypothesis",
    "pytest",
    "_pytest",
    "pytestqt",
    "mypy",
    "sqlalchemy.ext.mypy",
    "yaml",  # pydantic-settings' optional YAML source; the settings file is JSON
    "ibapi",
    "ib_async",
    "numpy.f2py",
    "numpy.testing",
    "pip",
    "setuptools",
    "pkg_resources",
]

# Loaded by name at run time (dialects from the URL), so named here.
HIDDEN_IMPORTS = [
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "psycopg_binary",
    "alembic.ddl.sqlite",
    "alembic.ddl.postgresql",
    "tzdata",  # zoneinfo data for the demo gateway, never the system's (Windows has none)
]


# ------------------------------------------------------------------------------ shared helpers


def executable(bundle: Path) -> Path:
    """The program inside a one-folder bundle."""
    return bundle / (f"{NAME}.exe" if sys.platform == "win32" else NAME)


def contents(bundle: Path) -> Path:
    """Where PyInstaller puts everything but the program (`sys._MEIPASS` when frozen)."""
    return bundle / "_internal"


def plugin_name(file_name: str) -> str:
    """`libqxcb.so` / `qwindows.dll` / `libqcocoa.dylib` → `qxcb` / `qwindows` / `qcocoa`."""
    stem = file_name.split(".", 1)[0]
    return stem[3:] if stem.startswith("lib") else stem


def _qt_part(parts: Sequence[str], folder: str) -> int | None:
    """Index of `folder` in a PySide6 path (`PySide6/Qt/plugins/…`, `PySide6/plugins/…`)."""
    if "PySide6" not in parts:
        return None
    start = parts.index("PySide6")
    for index in range(start + 1, len(parts)):
        if parts[index] == folder:
            return index
    return None


def bundle_size(bundle: Path) -> tuple[int, int]:
    """(bytes, files) of a bundle; symbolic links are counted once, as links."""
    total = files = 0
    for path in bundle.rglob("*"):
        if path.is_symlink() or path.is_file():
            total += path.lstat().st_size
            files += 1
    return total, files


def check_bundle(bundle: Path, source: Path = ROOT) -> list[str]:
    """Problems with a built bundle (empty when it is complete and holds no stray Qt)."""
    problems: list[str] = []
    program = executable(bundle)
    if not program.is_file() or not os.access(program, os.X_OK):
        return [f"{program}: no executable program"]
    inside = contents(bundle)
    shipped = {p.name for p in (inside / "migrations" / "versions").glob("*.py")}
    expected = {p.name for p in (source / "migrations" / "versions").glob("*.py")}
    if not (inside / "migrations" / "env.py").is_file() or shipped != expected:
        problems.append(f"migrations: shipped {sorted(shipped)}, source has {sorted(expected)}")
    if not (inside / "resources" / "icon.svg").is_file():
        problems.append("resources/icon.svg is missing")

    modules: set[str] = set()
    plugins: dict[str, set[str]] = {}
    for path in (inside / "PySide6").rglob("*"):
        parts = path.relative_to(inside).parts
        if len(parts) == 2 and parts[1].startswith("Qt") and parts[1].endswith((".so", ".pyd")):
            modules.add(parts[1].split(".", 1)[0])
        at = _qt_part(parts, "plugins")
        if at is not None and len(parts) == at + 3:
            plugins.setdefault(parts[at + 1], set()).add(plugin_name(parts[at + 2]))
        if "qml" in parts or any(word in parts[-1] for word in ("Qt6Qml", "Qt6Quick")):
            problems.append(f"QML/Quick is not part of the app: {'/'.join(parts)}")
            break
    if not {"QtCore", "QtGui", "QtWidgets"} <= modules or not modules <= QT_MODULES:
        problems.append(f"PySide6 modules {sorted(modules)}; allowed: {sorted(QT_MODULES)}")
    for folder, names in sorted(plugins.items()):
        stray = names - QT_PLUGINS.get(folder, frozenset())
        if stray:
            problems.append(f"Qt plugins outside QT_PLUGINS: {folder}/{sorted(stray)}")
    needed = {
        ("platforms", "qoffscreen"),
        ("platforms", NATIVE_PLATFORM.get(sys.platform, "qxcb")),
        ("iconengines", "qsvgicon"),
        ("imageformats", "qsvg"),
    }
    for folder, name in sorted(needed):
        if name not in plugins.get(folder, set()):
            problems.append(f"Qt plugin {folder}/{name} is missing")
    return problems


# ------------------------------------------------------------------------------ the spec


def _files(folder: Path, skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(source file, destination folder) pairs for a data folder; no caches, no skipped parts."""
    skipped = {"__pycache__", *skip}
    pairs = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(ROOT)
        if path.is_file() and not skipped & set(relative.parts) and path.suffix != ".pyc":
            pairs.append((str(path), str(relative.parent)))
    return pairs


def _migration_imports() -> list[str]:
    """Every module that migrations/env.py and the revision scripts import (absolute imports)."""
    names: set[str] = set()
    for script in sorted((ROOT / "migrations").rglob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                # `from alembic import op`: op is a module of its own.
                names.update(
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if _is_submodule(node.module, alias.name)
                )
    names.discard("__future__")
    return sorted(names)


def _is_submodule(package: str, name: str) -> bool:
    """Whether `package.name` is a module file; found without importing anything."""
    top, *rest = package.split(".")
    spec = importlib.util.find_spec(top)
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location, *rest)
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            return True
    return False


def _restrict_qt_plugins() -> None:
    """Make PyInstaller's Qt hooks collect only the plugins in QT_PLUGINS.

    Filtering here (not the finished TOC) keeps the libraries that only dropped plugins need
    (Wayland, EGLFS, GTK…) out of the dependency analysis too. check_bundle notices if a new
    PyInstaller stops calling this.
    """
    from PyInstaller.utils.hooks import qt

    original = qt.QtLibraryInfo.collect_plugins

    def collect_plugins(self: Any, plugin_type: str) -> list[tuple[str, str]]:
        kept = QT_PLUGINS.get(plugin_type, frozenset())
        found: list[tuple[str, str]] = original(self, plugin_type)
        return [(src, dst) for src, dst in found if plugin_name(Path(src).name) in kept]

    qt.QtLibraryInfo.collect_plugins = collect_plugins


def _not_translation(entry: tuple[str, str, str]) -> bool:
    parts = Path(entry[0]).parts
    return _qt_part(parts, "translations") is None


def _freeze() -> None:
    """The spec proper: executed by PyInstaller (with SPECPATH set), never imported."""
    from PyInstaller.building.api import COLLECT, EXE, PYZ
    from PyInstaller.building.build_main import Analysis
    from PyInstaller.utils.hooks import collect_submodules

    _restrict_qt_plugins()
    # The console script's body; a file of its own so the bundle's sys.path is the bundle only.
    entry = WORKPATH / f"{NAME}.py"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(
        '"""position-sync, frozen: the same CLI as the console script."""\n\n'
        "import sys\n\nfrom app.cli.main import main\n\nsys.exit(main())\n",
        encoding="utf-8",
    )
    analysis = Analysis(
        [str(entry)],
        pathex=[str(ROOT)],
        datas=_files(ROOT / "migrations") + _files(ROOT / "resources", skip={"screenshots"}),
        hiddenimports=sorted({*HIDDEN_IMPORTS, *_migration_imports(), *collect_submodules("app")}),
        excludes=EXCLUDES,
    )
    analysis.datas = [entry for entry in analysis.datas if _not_translation(entry)]
    pyz = PYZ(analysis.pure)
    program = EXE(
        pyz,
        analysis.scripts,
        [],
        exclude_binaries=True,
        name=NAME,
        console=True,  # one program for the CLI and the window; its output must show
        # No strip: it breaks the patchelf-ed libraries of manylinux wheels (numpy's OpenBLAS:
        # "ELF load command address/offset not page-aligned").
        strip=False,
        upx=False,
    )
    COLLECT(program, analysis.binaries, analysis.datas, name=NAME, strip=False, upx=False)


# ------------------------------------------------------------------------------ the script


def archive(bundle: Path) -> Path:
    """dist/position-sync-<version>-<os>-<machine>.tar.gz (.zip on Windows), links kept."""
    sys.path.insert(0, str(ROOT))
    from app import __version__

    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    base = bundle.parent / f"{NAME}-{__version__}-{system}-{platform.machine().lower()}"
    if sys.platform == "win32":
        return Path(shutil.make_archive(str(base), "zip", bundle.parent, bundle.name))

    def anonymous(member: tarfile.TarInfo) -> tarfile.TarInfo:
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        return member

    packed = base.with_name(base.name + ".tar.gz")
    # Level 6: nearly level 9's size in half its time. Symbolic links stay links.
    with tarfile.open(packed, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=bundle.name, filter=anonymous)
    return packed


def main(argv: Sequence[str] | None = None) -> int:
    """Build dist/position-sync/ from scratch, check it, print its size."""
    parser = argparse.ArgumentParser(prog="python build_spec.py", description=main.__doc__)
    parser.add_argument(
        "--archive", action="store_true", help="also pack the folder (.tar.gz; .zip on Windows)"
    )
    args = parser.parse_args(argv)

    import PyInstaller.__main__

    started = time.monotonic()
    # A fresh analysis every time: the plugin filter is not among PyInstaller's cache keys.
    shutil.rmtree(WORKPATH, ignore_errors=True)
    SPEC.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).resolve(), SPEC)
    PyInstaller.__main__.run(
        [
            str(SPEC),
            "--noconfirm",
            "--log-level=WARN",
            f"--distpath={DISTPATH}",
            f"--workpath={WORKPATH}",
        ]
    )
    bundle = DISTPATH / NAME
    problems = check_bundle(bundle)
    for problem in problems:
        print(f"build_spec: {problem}", file=sys.stderr)
    if problems:
        return 1
    size, files = bundle_size(bundle)
    took = time.monotonic() - started
    print(f"built {bundle} in {took:.0f} s: {size / 2**20:.0f} MiB in {files} files")
    if args.archive:
        packed = archive(bundle)
        print(f"packed {packed}: {packed.stat().st_size / 2**20:.0f} MiB")
    return 0


if _SPECPATH:
    _freeze()
elif __name__ == "__main__":
    sys.exit(main())
