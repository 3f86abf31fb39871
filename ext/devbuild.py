"""Developer helper: compile some kernels in place.

    python ext/devbuild.py modbus mqtt     # builds ext/_modbus*.so, ext/_mqtt*.so

`pip install .` does the same for all kernels; this exists so that one kernel
can be rebuilt in a second or two while working on it.
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension  # noqa: F401 (kept for scripts that import it from here)
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

if __name__ == "__main__":
    names = sys.argv[1:] or ["engine", "modbus", "mqtt", "opcua"]
    os.chdir(ROOT)
    import importlib.util

    spec = importlib.util.spec_from_file_location("_otwatch_ext_build", os.path.join(HERE, "build.py"))
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    extensions = build.extensions

    wanted = {f"otwatch.ext._{n}" for n in names}
    exts = [e for e in extensions() if e.name in wanted]
    # A Distribution run directly, not setup(): setup() would also read pyproject.toml from this folder,
    # which an older setuptools in a developer's venv may not understand (the SPDX `license` string needs
    # setuptools >= 77); compiling some kernels in place needs nothing from it.
    dist = Distribution({"name": "otwatch-devbuild", "ext_modules": exts, "package_dir": {"otwatch.ext": "ext"},
                         "script_args": ["build_ext", "--inplace", "-q"]})
    dist.parse_command_line()
    dist.run_commands()
