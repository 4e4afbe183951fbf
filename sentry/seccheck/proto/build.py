"""Regenerate the committed *_pb2.py from the .proto files beside this script.

Run `python -m sentry.seccheck.proto.build` from the repository root after
editing a .proto. protoc runs with the repository root as its import path, so
the generated modules import each other as `sentry.seccheck.proto.X_pb2`.
"""

from __future__ import annotations

import pathlib
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]


def main() -> None:
    protos = sorted(p.relative_to(REPO).as_posix() for p in HERE.glob("*.proto"))
    subprocess.run(["protoc", f"--proto_path={REPO}", f"--python_out={REPO}", *protos], check=True, cwd=REPO)


if __name__ == "__main__":
    main()
