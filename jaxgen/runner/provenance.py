"""The code a run was trained with: the SHA-256 of each plugin file its config names.

A config may name files of the user's (`objective.name=my_loss.py:make`, `model.name=...`,
`data.name=...`). The trainer records each file's hash in run.json (`code`); when the run
resumes, and when `jaxgen eval`, `sample` or `pictures` restore it, a file whose hash has
changed since is named in a note, so results are never silently those of edited code. A
resume after an edit is also logged in run.json (`code_changes`: the step it resumed at
and the old and new hashes).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

KEYS = ("objective.name", "model.name", "data.name")


def _file_of(name: str) -> Path | None:
    target, sep, attr = str(name).rpartition(":")
    if sep and attr and target.endswith(".py"):
        return Path(target).expanduser()
    return None


def code_hashes(config) -> dict:
    """{config key: {"file": path, "sha256": hex}} of the plugin files the config names."""
    out = {}
    for key in KEYS:
        group, _, field = key.partition(".")
        path = _file_of(config[group].get(field, ""))
        if path is not None and path.is_file():
            out[key] = {"file": str(path),
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return out


def recorded(workdir) -> dict:
    path = Path(workdir) / "run.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("code", {})


def previous_log(workdir) -> list:
    """run.json's `code_changes` so far."""
    path = Path(workdir) / "run.json"
    return json.loads(path.read_text()).get("code_changes", []) if path.is_file() else []


def changes(old: dict, new: dict) -> list[str]:
    """One line per plugin file whose hash differs between two `code_hashes`."""
    out = []
    for key, was in old.items():
        now = new.get(key)
        if now is None or now["sha256"] != was["sha256"]:
            where = now["file"] if now else was["file"]
            after = now["sha256"][:12] if now else "gone"
            out.append(f"{key}'s file {where} has changed since the run was trained "
                       f"(sha256 {was['sha256'][:12]} -> {after})")
    return out


def note_changes(workdir, config, say, doing: str) -> list[str]:
    """Says, for each changed plugin file, that `doing` runs the new code; returns the lines."""
    lines = changes(recorded(workdir), code_hashes(config))
    for line in lines:
        say(f"Note: {line}; {doing} runs the file as it is now.")
    return lines
