"""The measured-profile section of docs/statistics.md, generated from the bundled profiles.

``python -m sparsity_models.profiles docs --write`` replaces the text between the two
markers; a test checks that the committed document equals :func:`render` (computed from
the committed profile files only, so it is fast and needs no checkpoint package).
"""

from __future__ import annotations

from pathlib import Path

from sparsity_models.profiles import FAMILY_SOURCES, GENERIC_SOURCES, PROFILE_VERSION, available, load_profile
from sparsity_models.report import markdown
from sparsity_models.roles import ROLES
from workloads.yamlio import write_atomic

DOC = Path(__file__).resolve().parents[2] / "docs" / "statistics.md"
BEGIN = "<!-- begin generated: python -m sparsity_models.profiles docs --write -->"
END = "<!-- end generated -->"
ORDER = ("minilm", "smollm2", "vit-s-dinov2", "mobilenetv2", "efficientnet-lite0", "vgg16", "whisper-tiny", "hed-vgg16")


def _names() -> list[str]:
    have = available()
    return [n for n in ORDER if n in have] + [n for n in have if n not in ORDER]


def sources_table() -> str:
    """Model family -> the checkpoint (and role, where it differs) measuring each of its roles."""
    out = ["| model family (`model_type`) | checkpoint: roles |", "|---|---|"]
    for fam, m in [*FAMILY_SOURCES.items(), ("any other (generic match)", GENERIC_SOURCES)]:
        by: dict[str, list[str]] = {}
        for role, entry in m.items():
            ck, _, src = entry.partition(":")
            by.setdefault(ck, []).append(f"`{role}`" + (f" (its `{src}`)" if src else ""))
        out.append(f"| {fam} | " + "; ".join(f"{ck}: {', '.join(r)}" for ck, r in by.items()) + " |")
    return "\n".join(out)


def checkpoint_section(name: str) -> str:
    data = load_profile(name)
    ck, table = data["checkpoint"], data["table"]
    roles = ", ".join(f"`{r}` {v['layers']}" for r, v in data["roles"].items())
    path = Path(__file__).resolve().parents[1] / "data" / "profiles" / f"{name}.json"
    lines = [
        f"### {name}: {ck['architecture']}",
        "",
        f"Package `{ck['package']}` ({ck['licence']}), file `{ck['file']}` ({ck['format']}); weights: {ck['weights']}. "
        f"Inputs: {ck['inputs']}. Profile: `sparsity_models/data/profiles/{name}.json`, "
        f"{path.stat().st_size / 1024:.0f} KiB; roles (layers measured): {roles}.",
        "",
        f"Table over {table['layers']} weight layers ({table['weights'] / 1e6:.2f} M weights):",
        "",
        markdown([tuple(r) for r in table["rows"]], f"{name} (measured)"),
    ]
    return "\n".join(lines)


def render() -> str:
    """The generated block (markers included)."""
    parts = [
        BEGIN,
        f"Measured profiles version {PROFILE_VERSION}. Which checkpoint's role stands in for each "
        "role of a model family (`-`: no measured role; such layers use the synthetic profile and the run says so):",
        "",
        sources_table(),
        "",
        "Built-in layers with no measured role (synthetic, listed under `no_matching_role`): the ViT/DeiT "
        "classifier heads and OPT-350m's `decoder.project_in`/`project_out` (a test keeps this list current).",
        "",
        "Roles: " + "; ".join(f"`{r}` {d}" for r, d in ROLES.items() if r != "other") + ".",
    ]
    for name in _names():
        parts += ["", checkpoint_section(name)]
    parts.append(END)
    return "\n".join(parts)


def write(path: Path = DOC) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    write_atomic(path, text[:start] + render() + text[end:])
