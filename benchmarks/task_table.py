"""The task suite as a Markdown table (task, x and y shapes, true MI, source), for the README.

Usage: python benchmarks/task_table.py > /tmp/tasks.md   (mixtures compute their MI by Monte Carlo: ~1 min)
"""

from __future__ import annotations

import selfconsistency  # noqa: F401  (registers the image channel tasks)
from micore.tasks import make_task, task_names

SOURCES = {
    "beyond-normal": "bmi, Czyż et al. 2023",
    "mixtures": "Czyż et al. 2023 (mixtures; MI by Monte Carlo)",
    "high-mi": "this project: the families above at 10-20 nats",
    "classic": "Song & Ermon 2020 (Gaussian, Cubic); ReMINE (one-hot)",
    "image-channel": "Lee & Rhee 2024 (binary symmetric channel on 8x8 digits)",
}


def main() -> None:
    print("| suite | task | x shape | y shape | true MI (nats) | source |")
    print("|---|---|---|---|---|---|")
    for suite, source in SOURCES.items():
        for name in task_names(suite):
            task = make_task(name)
            err = f" ± {task.mi_stderr:.3f}" if task.mi_stderr else ""
            shape_x = "×".join(map(str, task.x_shape))
            shape_y = "×".join(map(str, task.y_shape))
            print(f"| {suite} | `{name}` | {shape_x} | {shape_y} | {task.mi:.3f}{err} | {source} |")


if __name__ == "__main__":
    main()
