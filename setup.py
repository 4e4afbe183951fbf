"""Build steps beyond plain Python: the cffi KVM module, the ring0 blobs and the other native programs.

The cffi module is built by cffi's setuptools integration; `build_ext` is
extended to assemble ring0's `.S` flavours (and any other native artefacts
registered in NATIVE_BUILDERS) next to their sources for in-place/editable
installs, or into the build tree otherwise.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# The builders share kvmsandbox/build.py; a PEP 517 build does not put the
# checkout on sys.path, so do it here.
sys.path.insert(0, str(HERE))


def _load(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, HERE / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (package directory, builder module, function taking the output directory)
NATIVE_BUILDERS = [
    ("kvmsandbox/ring0", "kvmsandbox/ring0/build.py", "build_flavours"),
    ("sentry/loader/vdso", "sentry/loader/vdso/build.py", "build_vdso"),
    ("kvmsandbox/systrap", "kvmsandbox/systrap/build.py", "build_stub"),
    ("bootstrap/mirrors", "bootstrap/mirrors/build.py", "build_mirror"),
]


class BuildNative(build_ext):
    def run(self):
        for pkg_dir, module_path, func in NATIVE_BUILDERS:
            builder = _load(module_path)
            getattr(builder, func)(HERE / pkg_dir)
            if not self.inplace:
                getattr(builder, func)(Path(self.build_lib) / pkg_dir)
        super().run()


setup(
    cffi_modules=["kvmsandbox/kvm/_build.py:ffibuilder", "kvmsandbox/systrap/_systrap_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildNative},
)
