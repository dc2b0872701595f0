"""The suite's measured figures, one row per fault, for the README's "Faults" table."""

from __future__ import annotations

import json
import os
import threading


class Figures:
    def __init__(self):
        self.rows: dict[str, dict] = {}
        self.lock = threading.Lock()

    def record(self, fault: str, **figures) -> None:
        """Add to a fault's figures: numbers add up, lists extend, anything else is replaced,
        except max_* which keep their maximum."""
        with self.lock:
            row = self.rows.setdefault(fault, {})
            for name, value in figures.items():
                old = row.get(name)
                if old is None:
                    row[name] = value
                elif name.startswith("max_"):
                    row[name] = max(old, value)
                elif isinstance(value, bool) or not isinstance(value, int | float | list):
                    row[name] = value
                else:
                    row[name] = old + value

    def markdown(self) -> str:
        lines = ["| fault | figures |", "|---|---|"]
        for fault in sorted(self.rows):
            shown = ", ".join(f"{k} {v}" for k, v in sorted(self.rows[fault].items()))
            lines.append(f"| {fault} | {shown} |")
        return "\n".join(lines)

    def write(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("# Fault suite figures\n\n" + self.markdown() + "\n")
        with open(os.path.splitext(path)[0] + ".json", "w") as handle:
            json.dump(self.rows, handle, indent=2, sort_keys=True)
