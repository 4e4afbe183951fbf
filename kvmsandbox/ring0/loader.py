"""Load an assembled ring0 flavour: its text and where its entry and exit points are."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kvmsandbox.ring0.layout import LAYOUT

RING0_DIR = Path(__file__).resolve().parent
NUM_VECTORS = 32


class Ring0Missing(RuntimeError):
    """The flavour was not assembled (the package build did not run)."""


@dataclasses.dataclass(frozen=True)
class Ring0Image:
    """A flavour's text (offset 0 = window start) and symbol offsets."""

    flavour: str
    text: bytes
    symbols: dict[str, int]

    @classmethod
    def load(cls, flavour: str = "pvm_native", directory: Path = RING0_DIR) -> Ring0Image:
        binary = directory / f"{flavour}.bin"
        symfile = directory / f"{flavour}.sym.json"
        if not binary.exists() or not symfile.exists():
            raise Ring0Missing(f"ring0 flavour {flavour} not built ({binary}); run the package build")
        text = binary.read_bytes()
        if len(text) > LAYOUT["TEXT_SIZE"]:
            raise Ring0Missing(f"ring0 text is {len(text)} bytes, window holds {LAYOUT['TEXT_SIZE']}")
        return cls(flavour, text, json.loads(symfile.read_text()))

    def offset(self, name: str) -> int:
        return self.symbols[name]

    def exit_points(self) -> dict[int, int]:
        """I/O port -> text offset just after the OUT that uses it (where RIP is at the exit)."""
        points = {
            LAYOUT["PORT_SYSCALL"]: self.symbols["syscall_exit"],
            LAYOUT["PORT_APPLIED"]: self.symbols["apply_exit"],
            LAYOUT["PORT_PARKED"]: self.symbols["park_exit"],
        }
        for vector in range(NUM_VECTORS):
            points[LAYOUT["PORT_EXC_BASE"] + vector] = self.symbols[f"exc{vector}_exit"]
        return points

    def vector_entry(self, vector: int) -> int:
        return self.symbols[f"exc{vector}"]
