"""Developer helper: compile some kernels in place.

    python ext/devbuild.py modbus mqtt     # builds ext/_modbus*.so, ext/_mqtt*.so

`pip install .` does the same for all kernels; this exists so that one kernel
can be rebuilt in a second or two while working on it.
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

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
    sys.argv = [sys.argv[0], "build_ext", "--inplace", "-q"]
    setup(name="otwatch-devbuild", ext_modules=exts, package_dir={"otwatch.ext": "ext"})
