"""Docs are tested: every exported field and every CLI command is documented."""

from pathlib import Path

from opensre.cli.main import COMMANDS
from opensre.model import PROCESS_FIELDS

ROOT = Path(__file__).resolve().parents[2]


def test_every_process_field_in_data_catalog():
    text = (ROOT / "docs/data-catalog.md").read_text()
    missing = [f for f in PROCESS_FIELDS if f"`{f}`" not in text]
    assert not missing, f"document these fields in docs/data-catalog.md: {missing}"


def test_every_command_in_readme():
    text = (ROOT / "README.md").read_text()
    missing = [c for c in COMMANDS if f"opensre {c}" not in text]
    assert not missing


def test_readme_two_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()
